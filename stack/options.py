"""TCP options: what a SYN offers, what the handshake settles, what each segment carries.

Theory of operation: `syn_options` builds the option list of a SYN or SYN-ACK in the order
Linux writes it (mss; sackOK+TS or nop,nop,TS; nop,nop,sackOK without TS; nop,wscale), so
packetdrill-style scripts written against Linux match. `negotiate` reads the peer's SYN and
fixes, once, what both ends agreed (`Negotiated`). `segment_options` gives the options of a
non-SYN segment: timestamps when agreed, then SACK blocks (RFC 2018 3) as room allows.
"""

from __future__ import annotations

from dataclasses import dataclass

from .wire import TCPSegment

MAX_WSCALE = 14              # RFC 7323 2.3
DEFAULT_MSS = 536            # RFC 9293 3.7.1 (MUST-15): no MSS option means 536
OPTION_SPACE = 40            # RFC 9293 3.1: data offset is at most 15 words
TS_SPACE = 12                # nop, nop, TS(10)


@dataclass
class Offer:
    """What this end puts in its SYN."""

    mss: int
    sack: bool
    timestamps: bool
    wscale: int | None       # None: no window-scale option


@dataclass
class Negotiated:
    """The outcome of the handshake for one connection."""

    peer_mss: int = DEFAULT_MSS
    sack: bool = False
    timestamps: bool = False
    window_scaling: bool = False
    snd_scale: int = 0       # shift applied to the peer's window field (RFC 7323 2.3)
    rcv_scale: int = 0       # shift applied to the window field we send


def wscale_for(space: int) -> int:
    """The smallest shift that lets a 16-bit window cover `space` octets (RFC 7323 2.2)."""
    shift = 0
    while shift < MAX_WSCALE and (0xFFFF << shift) < space:
        shift += 1
    return shift


def syn_options(offer: Offer, tsval: int = 0, tsecr: int = 0) -> list[tuple]:
    """Options for a SYN or SYN-ACK in Linux's order (see the module comment)."""
    opts: list[tuple] = [("mss", offer.mss)]
    if offer.timestamps:
        opts += [("sackOK",)] if offer.sack else [("nop",), ("nop",)]
        opts.append(("TS", tsval, tsecr))
    elif offer.sack:
        opts += [("nop",), ("nop",), ("sackOK",)]
    if offer.wscale is not None:
        opts += [("nop",), ("wscale", offer.wscale)]
    return opts


def answer(ours: Offer, syn: TCPSegment) -> Offer:
    """Our SYN-ACK offer: only what the peer's SYN offered too (RFC 7323 2.2, 3.2; RFC 2018 2)."""
    return Offer(mss=ours.mss,
                 sack=ours.sack and syn.option("sackOK") is not None,
                 timestamps=ours.timestamps and syn.option("TS") is not None,
                 wscale=ours.wscale if syn.option("wscale") is not None else None)


def negotiate(ours: Offer, syn: TCPSegment) -> Negotiated:
    """What holds after exchanging `ours` with the peer's SYN or SYN-ACK `syn`."""
    mss = syn.option("mss")
    peer_ws = syn.option("wscale")
    both_ws = ours.wscale is not None and peer_ws is not None
    return Negotiated(
        # RFC 9293 3.7.1: a zero MSS would be nonsense; treat it as the 536 default.
        peer_mss=mss[1] if mss and mss[1] > 0 else DEFAULT_MSS,
        sack=ours.sack and syn.option("sackOK") is not None,
        timestamps=ours.timestamps and syn.option("TS") is not None,
        window_scaling=both_ws,
        # RFC 7323 2.3: a shift above 14 is used as 14 (and MAY be logged).
        snd_scale=min(peer_ws[1], MAX_WSCALE) if both_ws else 0,
        rcv_scale=ours.wscale if both_ws else 0,
    )


def segment_options(neg: Negotiated, tsval: int, tsecr: int,
                    sack_blocks: list[tuple[int, int]]) -> list[tuple]:
    """Options of a non-SYN segment: nop,nop,TS then nop,nop,SACK with the blocks that fit."""
    opts: list[tuple] = []
    room = OPTION_SPACE
    if neg.timestamps:
        opts += [("nop",), ("nop",), ("TS", tsval, tsecr)]
        room -= TS_SPACE
    if neg.sack and sack_blocks:
        fit = (room - 4) // 8           # nop, nop, kind, length, then 8 octets a block
        opts += [("nop",), ("nop",), ("sack", sack_blocks[:fit])]
    return opts
