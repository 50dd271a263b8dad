#!/usr/bin/python3
"""A libtorrent DHT node on loopback for Shoal's DHT interoperability tests.

Joins a DHT through the given bootstrap nodes (loopback only: never the public routers) and either
announces a torrent's info-hash (a magnet-style torrent with force_dht_announce, repeated) or looks up
the peers of an info-hash (dht_get_peers, repeated). Prints one JSON object per line on stdout:
  {"event": "listening", "port": N}                 once the socket is open (TCP and UDP share the port)
  {"event": "status", "dht_nodes": N, ...}          about every --interval seconds
  {"event": "announced", "info_hash": H}            libtorrent reported a DHT announce for the torrent
  {"event": "peers", "info_hash": H, "peers": [...]}  a get_peers lookup returned these peers
  {"event": "timeout"}                              --max-seconds ran out (exit 3)

Settings follow /work/shared/PEERS.md "DHT on loopback": dht_restrict_routing_ips and
dht_restrict_search_ips off (every node is 127.0.0.1), dht_prefer_verified_node_ids off (BEP 42 ids
cannot be verified for 127.0.0.1), dht_block_ratelimit raised (every node shares one IP),
dht_bootstrap_nodes and add_dht_node loopback only; no LSD, UPnP,
NAT-PMP or uTP. With --get-peers it exits 0 once --expect HOST:PORT is among the peers found (or, without
--expect, once any peer is found); with --announce it runs until --max-seconds (exit 0).
Run it with Debian's /usr/bin/python3, which has python3-libtorrent.
"""
import argparse
import json
import os
import sys
import tempfile
import time

import libtorrent as lt

# The helpers of the peer script beside this one (its directory is on sys.path when run as a script).
from lt_peer import emit, parse_address


def arguments():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True, help="listen port (TCP and the DHT's UDP) on 127.0.0.1")
    p.add_argument("--bootstrap", action="append", type=parse_address, default=[], help="HOST:PORT of a DHT node")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--announce", metavar="INFOHASH", help="announce this info-hash (40 hex digits)")
    mode.add_argument("--get-peers", metavar="INFOHASH", help="look up the peers of this info-hash")
    mode.add_argument("--node", action="store_true", help="only take part in the DHT")
    p.add_argument("--expect", type=parse_address, help="with --get-peers: the peer that must be found")
    p.add_argument("--max-seconds", type=float, default=60.0)
    p.add_argument("--interval", type=float, default=1.0, help="seconds between status lines and lookups")
    return p.parse_args()


def main():
    args = arguments()
    if not args.bootstrap and not args.node:
        emit({"event": "error", "message": "--bootstrap is required"})
        return 2
    bootstrap = ",".join("%s:%d" % b for b in args.bootstrap)
    settings = {
        "listen_interfaces": "127.0.0.1:%d" % args.port,
        "outgoing_interfaces": "",
        "enable_dht": True,
        "dht_bootstrap_nodes": bootstrap,
        "dht_restrict_routing_ips": False,
        "dht_restrict_search_ips": False,
        "dht_prefer_verified_node_ids": False,
        # Every node of the test is 127.0.0.1: the per-IP limit of 5 queries a second would block them all.
        "dht_block_ratelimit": 1000,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_ip_notifier": False,
        "enable_incoming_utp": False,
        "enable_outgoing_utp": False,
        "allow_multiple_connections_per_ip": True,
        "alert_mask": (lt.alert.category_t.error_notification | lt.alert.category_t.status_notification
                       | lt.alert.category_t.dht_notification | lt.alert.category_t.dht_operation_notification),
    }
    ses = lt.session(settings)
    for host, port in args.bootstrap:
        ses.add_dht_node((host, port))
    emit({"event": "listening", "port": ses.listen_port()})

    started = time.monotonic()
    deadline = started + args.max_seconds
    handle = None
    target = None
    if args.announce:
        target = lt.sha1_hash(bytes.fromhex(args.announce))
        params = lt.add_torrent_params()
        params.info_hashes = lt.info_hash_t(target)
        params.save_path = tempfile.mkdtemp(prefix="lt-dht-")
        params.flags &= ~lt.torrent_flags.auto_managed
        params.flags &= ~lt.torrent_flags.paused
        handle = ses.add_torrent(params)
    elif args.get_peers:
        target = lt.sha1_hash(bytes.fromhex(args.get_peers))
    expected = None
    if args.expect:
        expected = "%s:%d" % args.expect

    next_action = started
    found = set()
    while time.monotonic() < deadline:
        now = time.monotonic()
        if now >= next_action:
            next_action = now + args.interval
            status = ses.status()
            emit({"event": "status", "t": round(now - started, 2), "dht_nodes": status.dht_nodes})
            if handle is not None:
                handle.force_dht_announce()
            elif target is not None and status.dht_nodes > 0:
                ses.dht_get_peers(target)
        ses.wait_for_alert(200)
        for alert in ses.pop_alerts():
            if isinstance(alert, lt.dht_get_peers_reply_alert):
                peers = ["%s:%d" % (p[0], p[1]) for p in alert.peers()]
                emit({"event": "peers", "info_hash": str(alert.info_hash), "peers": peers})
                found.update(peers)
                if (expected and expected in found) or (not expected and found):
                    return 0
            elif isinstance(alert, lt.dht_announce_alert):
                pass
            elif type(alert).__name__ == "dht_reply_alert" and handle is not None:
                emit({"event": "announced", "info_hash": args.announce, "peers": alert.num_peers})
    emit({"event": "timeout", "found": sorted(found)})
    return 0 if args.announce or args.node else 3


if __name__ == "__main__":
    sys.exit(main())
