"""A port reserved for a child process to listen on: nobody else gets it meanwhile, the child's server does.

Without the reservation, the port picked for an emulator or a web task was free again until the child bound it, and
another xdist worker's pick or any outgoing connection's automatic port could take it first.
"""

from __future__ import annotations

import errno
import socket

import pytest

from bench.localaws.emulators import LOOPBACK, PortReservation


def test_a_reserved_port_is_taken_for_others_and_open_to_a_reusing_server() -> None:
    reservation = PortReservation()
    try:
        # What the kernel refuses here it also never hands out as a free port or an outgoing connection's port.
        with socket.socket() as other, pytest.raises(OSError) as refused:
            other.bind((LOOPBACK, reservation.port))
        assert refused.value.errno == errno.EADDRINUSE
        with socket.socket() as server:  # as uvicorn, hypercorn and werkzeug bind
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            server.bind((LOOPBACK, reservation.port))
            server.listen()
            with socket.create_connection((LOOPBACK, reservation.port), timeout=5):
                pass
    finally:
        reservation.release()
    with socket.socket() as later:  # released: an ordinary port again
        later.bind((LOOPBACK, reservation.port))
