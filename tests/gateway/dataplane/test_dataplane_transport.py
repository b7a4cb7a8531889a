"""CoalescingTransport over a real socket pair: one write per response, nothing held long."""

from __future__ import annotations

import asyncio
import socket

import pytest

from gateway.dataplane.http.coalescing import CoalescingTransport

HEADER = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n"


@pytest.fixture
async def pair():
    loop = asyncio.get_running_loop()
    ours, theirs = socket.socketpair()
    theirs.setblocking(False)
    transport, _protocol = await loop.connect_accepted_socket(asyncio.Protocol, ours)
    yield CoalescingTransport(transport, loop), theirs
    transport.close()
    theirs.close()


def pending(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except BlockingIOError:
        return b""


async def test_header_and_body_leave_in_one_write(pair):
    wrapped, peer = pair
    wrapped.write(HEADER)
    assert pending(peer) == b""  # held back for the body
    wrapped.write(b"hello")
    assert pending(peer) == HEADER + b"hello"  # one send, read by one recv
    for _ in range(3):
        await asyncio.sleep(0)
    assert pending(peer) == b""  # the scheduled flush found nothing left


async def test_a_header_without_a_body_is_flushed_on_the_next_tick(pair):
    wrapped, peer = pair
    wrapped.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    for _ in range(3):
        await asyncio.sleep(0)
    assert pending(peer) == b"HTTP/1.1 100 Continue\r\n\r\n"


async def test_other_writes_pass_straight_through_and_close_flushes(pair):
    wrapped, peer = pair
    wrapped.write(b"5\r\nhello\r\n")
    assert pending(peer) == b"5\r\nhello\r\n"
    wrapped.write(HEADER)
    assert not wrapped.is_closing()
    wrapped.close()
    await asyncio.sleep(0)
    assert pending(peer) == HEADER
