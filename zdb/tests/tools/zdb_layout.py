#!/usr/bin/env python3
"""Independent reader of the 0-db v2 on-disk layout (reference section 8).

Usage: zdb_layout.py INDEX_ROOT DATA_ROOT
Prints JSON: {"namespaces": {name: {mode, password, public, worm, maxsize,
live: {hexkey: {len, sha256}}, deleted: [hexkey...], errors: [...]}}}

Stdlib only. CRC-32C (Castagnoli, reflected poly 0x82F63B78) with init 0 and
no final xor, as the reference specifies.
"""
import hashlib
import json
import os
import struct
import sys

_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _TABLE.append(_c)


def crc32c(data, crc=0):
    for b in data:
        crc = _TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc & 0xFFFFFFFF


IDX_HDR = struct.Struct("<4sIQQIB")  # 29 bytes
IDX_ENT = struct.Struct("<BIIIBIIIII")  # 34 bytes
DAT_HDR = struct.Struct("<4sIQQI")  # 28 bytes
DAT_ENT = struct.Struct("<BIIIBI")  # 18 bytes
assert IDX_HDR.size == 29 and IDX_ENT.size == 34
assert DAT_HDR.size == 28 and DAT_ENT.size == 18


def read_descriptor(path, errors):
    raw = open(path, "rb").read()
    if len(raw) < 15:
        errors.append("descriptor too short")
        return {}
    version, nlen, plen, maxsize, flags = struct.unpack_from("<IBBQB", raw, 0)
    if version != 1:
        errors.append("descriptor version %d" % version)
    if len(raw) < 15 + nlen + plen:
        errors.append("descriptor truncated")
    name = raw[15:15 + nlen].decode("utf-8", "replace")
    password = raw[15 + nlen:15 + nlen + plen].decode("utf-8", "replace") if plen else None
    return {
        "name": name,
        "password": password,
        "maxsize": maxsize,
        "public": bool(flags & 1),
        "worm": bool(flags & 2),
        "extended": bool(flags & 4),
    }


class DataFiles:
    def __init__(self, ddir, errors):
        self.ddir = ddir
        self.errors = errors
        self.cache = {}

    def get(self, fileid):
        if fileid not in self.cache:
            path = os.path.join(self.ddir, "d%d" % fileid)
            try:
                raw = open(path, "rb").read()
            except OSError as e:
                self.errors.append("cannot read %s: %s" % (path, e))
                raw = None
            if raw is not None:
                if len(raw) < 28:
                    self.errors.append("d%d: header truncated" % fileid)
                else:
                    magic, ver, _c, _o, fid = DAT_HDR.unpack_from(raw, 0)
                    if magic != b"DAT0" or ver != 3 or fid != fileid:
                        self.errors.append("d%d: bad header %r %d %d" % (fileid, magic, ver, fid))
            self.cache[fileid] = raw
        return self.cache[fileid]

    def entry(self, fileid, offset):
        raw = self.get(fileid)
        if raw is None or offset + 18 > len(raw):
            return None
        idlen, dlen, prev, crc, flags, ts = DAT_ENT.unpack_from(raw, offset)
        key = raw[offset + 18:offset + 18 + idlen]
        val = raw[offset + 18 + idlen:offset + 18 + idlen + dlen]
        if len(val) != dlen:
            return None
        return {"key": key, "value": val, "crc": crc, "flags": flags, "ts": ts, "prev": prev}


def read_namespace(iroot, droot, name):
    errors = []
    idir = os.path.join(iroot, name)
    ddir = os.path.join(droot, name)
    desc = read_descriptor(os.path.join(idir, "zdb-namespace"), errors)
    if desc.get("name") not in (None, name):
        errors.append("descriptor name %r != dir %r" % (desc.get("name"), name))
    data = DataFiles(ddir, errors)

    # Read every index entry, in file order.
    entries = []
    mode = None
    n = 0
    while os.path.exists(os.path.join(idir, "i%d" % n)):
        raw = open(os.path.join(idir, "i%d" % n), "rb").read()
        if len(raw) < 29:
            errors.append("i%d: header truncated" % n)
            break
        magic, ver, _c, _o, fid, fmode = IDX_HDR.unpack_from(raw, 0)
        if magic != b"IDX0" or ver != 4 or fid != n:
            errors.append("i%d: bad header %r %d %d" % (n, magic, ver, fid))
        if n == 0:
            mode = fmode
        elif fmode != mode:
            errors.append("i%d: mode %d differs from i0 mode %d" % (n, fmode, mode))
        off = 29
        while off < len(raw):
            if off + 34 > len(raw):
                errors.append("i%d: torn entry header at %d" % (n, off))
                break
            (idlen, doff, dlen, prev, flags, dataid, ts, crc, pid, poff) = IDX_ENT.unpack_from(raw, off)
            key = raw[off + 34:off + 34 + idlen]
            if len(key) != idlen:
                errors.append("i%d: torn key at %d" % (n, off))
                break
            entries.append({
                "file": n, "off": off, "key": key, "doff": doff, "dlen": dlen,
                "prev": prev, "flags": flags, "dataid": dataid, "ts": ts,
                "crc": crc, "pid": pid, "poff": poff,
            })
            off += 34 + idlen
        n += 1
    if n == 0:
        errors.append("no index file")

    def value_of(e):
        if mode == 1:
            did = e["dataid"]
        else:
            did = e["dataid"] if e["dataid"] != 0 else e["file"]
        d = data.entry(did, e["doff"])
        if d is None:
            errors.append("key %s: data entry missing at d%d:%d" % (e["key"].hex(), did, e["doff"]))
            return None
        if d["key"] != e["key"]:
            errors.append("key %s: data key %s differs" % (e["key"].hex(), d["key"].hex()))
        if len(d["value"]) != e["dlen"]:
            errors.append("key %s: length mismatch" % e["key"].hex())
        c = crc32c(d["value"])
        if c != e["crc"] or c != d["crc"]:
            errors.append("key %s: crc mismatch computed %08x index %08x data %08x"
                          % (e["key"].hex(), c, e["crc"], d["crc"]))
        return d["value"]

    live = {}
    deleted = set()
    if mode == 1:
        # Sequential: the slot number is the id. A deleted slot referenced as the
        # parent of another slot is a history copy made by an update, not a DEL.
        parents = set((e["pid"], e["poff"]) for e in entries if (e["pid"], e["poff"]) != (0, 0))
        for slot, e in enumerate(entries):
            kid = struct.pack("<Q", slot)
            if e["key"] != kid and len(e["key"]) == 8 and not (e["flags"] & 1):
                errors.append("slot %d holds key %s" % (slot, e["key"].hex()))
            if e["flags"] & 1:
                if (e["file"], e["off"]) not in parents:
                    deleted.add(kid.hex())
                continue
            v = value_of(e)
            if v is not None:
                live[kid.hex()] = {"len": len(v), "sha256": hashlib.sha256(v).hexdigest()}
    else:
        # User keys: replay in file order (a deleted entry is an insert then a delete).
        state = {}
        for e in entries:
            k = e["key"]
            if e["flags"] & 1:
                state.pop(k, None)
                deleted.add(k)
            else:
                state[k] = e
                deleted.discard(k)
        for k, e in state.items():
            v = value_of(e)
            if v is not None:
                live[k.hex()] = {"len": len(v), "sha256": hashlib.sha256(v).hexdigest()}
        deleted = set(k.hex() for k in deleted)

    return {
        "mode": {0: "user", 1: "seq"}.get(mode, "unknown"),
        "password": desc.get("password"),
        "public": desc.get("public"),
        "worm": desc.get("worm"),
        "maxsize": desc.get("maxsize"),
        "index_files": n,
        "live": live,
        "deleted": sorted(deleted),
        "errors": errors,
    }


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    iroot, droot = sys.argv[1], sys.argv[2]
    out = {"namespaces": {}}
    for name in sorted(os.listdir(iroot)):
        if os.path.isfile(os.path.join(iroot, name, "zdb-namespace")):
            out["namespaces"][name] = read_namespace(iroot, droot, name)
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    print()


if __name__ == "__main__":
    main()
