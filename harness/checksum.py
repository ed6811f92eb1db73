"""The Internet checksum (RFC 1071), as the harness computes it for IPv4, TCP and ICMP.

The checksum is the one's complement of the one's-complement sum of the data's 16-bit words.
Rather than add word by word in a Python loop, the harness uses what RFC 1071 section 2 calls
deferred carries: the end-around-carry sum of 16-bit words is their ordinary sum taken
modulo 0xFFFF (65536 is 1 modulo 65535), and so is any number whose 16-bit digits are those
words. A buffer read as one big-endian integer is such a number, so a whole buffer costs one
`int.from_bytes`, and a pseudo-header is added in as plain integers (an address read as one
number counts as its words do).

The remainder alone is ambiguous: 0 stands for +0 (every word zero: the sum is 0x0000) and
for -0 (a non-zero sum that is a multiple of 0xFFFF: the sum is 0xFFFF). `finish` tells them
apart by the total, which is zero only for the first.
"""

from __future__ import annotations

_SHORT = 2048     # bits: a total longer than this is folded before the remainder is taken


def word_sum(data: bytes) -> int:
    """A number congruent modulo 0xFFFF to the sum of `data`'s 16-bit big-endian words, an
    odd last octet padded on the right with zeros (RFC 9293 3.1); zero only when they all are.
    Sums of buffers that each start on a word boundary add."""
    value = int.from_bytes(data, "big")
    return value << 8 if len(data) & 1 else value


def finish(total: int) -> int:
    """The checksum field for data whose `word_sum`s (pseudo-header included) add up to
    `total`: the one's complement of their one's-complement sum. Over data that carries a
    right checksum, it is 0."""
    # A remainder of a long number costs a division per 30-bit digit; a fold costs a shift
    # and an add. Adding the upper half of the total to its lower half, cut at a multiple of
    # 16 bits, keeps it congruent: a carry out of the lower half is added back at its bottom.
    while total.bit_length() > _SHORT:
        cut = total.bit_length() // 32 * 16
        total = (total >> cut) + (total & ((1 << cut) - 1))
    ones = total % 0xFFFF
    if ones == 0 and total != 0:
        ones = 0xFFFF            # -0: a non-zero one's-complement sum is never +0
    return 0xFFFF - ones


def checksum(data: bytes) -> int:
    """The Internet checksum of `data` (its own checksum field zero, or as received: then 0
    means the data is intact)."""
    return finish(word_sum(data))
