"""DER building and reading blocks shared by the CRL encoder, issuance and the lint loader."""

from __future__ import annotations


def length(size: int) -> bytes:
    """The DER length octets for ``size`` octets of contents."""
    if size < 0x80:
        return bytes((size,))
    octets = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(octets),)) + octets


def tlv(tag: int, content: bytes) -> bytes:
    return bytes((tag,)) + length(len(content)) + content


def read_tlv(data: bytes, offset: int, end: int) -> tuple[int, int, int]:
    """(tag, start of contents, end of contents) of the TLV at ``offset``, before ``end``.

    ValueError unless it is DER with a low tag number: a definite length in the shortest form,
    inside ``end``.
    """
    if offset + 2 > end:
        raise ValueError(f"no TLV at offset {offset}")
    tag, size = data[offset], data[offset + 1]
    start = offset + 2
    if tag & 0x1F == 0x1F:
        raise ValueError(f"high tag number at offset {offset}")
    if size & 0x80:
        count = size & 0x7F
        if not 0 < count <= 4 or start + count > end or data[start] == 0:
            raise ValueError(f"length at offset {offset} is not DER")
        size = int.from_bytes(data[start:start + count], "big")
        start += count
        if size < 0x80:
            raise ValueError(f"length at offset {offset} is not in the shortest form")
    if start + size > end:
        raise ValueError(f"TLV at offset {offset} runs past its end")
    return tag, start, start + size


def read_children(data: bytes, start: int, end: int) -> list[tuple[int, int, int, int]]:
    """(tag, TLV start, contents start, end) of each TLV between ``start`` and ``end``."""
    found = []
    while start < end:
        tag, contents, stop = read_tlv(data, start, end)
        found.append((tag, start, contents, stop))
        start = stop
    return found
