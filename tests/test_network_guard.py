"""The suite itself must fail if anything reaches beyond loopback."""

import os
import socket

import pytest
from pytest_socket import SocketConnectBlockedError


@pytest.mark.filterwarnings("ignore:A test tried to use socket:UserWarning")
def test_non_loopback_connections_are_refused_by_the_test_session():
    # 192.0.2.0/24 is reserved for documentation; the guard raises before any packet leaves.
    with pytest.raises(SocketConnectBlockedError):
        socket.create_connection(("192.0.2.1", 80), timeout=1)


def test_crewai_telemetry_and_version_checks_are_off():
    assert os.environ["CREWAI_DISABLE_TELEMETRY"] == "true"
    assert os.environ["OTEL_SDK_DISABLED"] == "true"
    assert os.environ["CREWAI_TRACING_ENABLED"] == "false"
    assert os.environ["CREWAI_DISABLE_VERSION_CHECK"] == "true"
