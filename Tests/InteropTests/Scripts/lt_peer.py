#!/usr/bin/python3
"""A libtorrent peer on loopback for Shoal's interoperability tests and benchmarks.

Seeds or downloads one torrent and prints one JSON object per line on stdout:
  {"event": "listening", "port": N}                       once the listen socket is open
  {"event": "metadata"}                                    a --magnet leecher has the info dictionary
  {"event": "status", ...}                                 about every --interval seconds
  {"event": "complete", ...}                               a leecher has every piece, on disk
  {"event": "error", "message": ...}                       then a non-zero exit
  {"event": "timeout", ...}                                --max-seconds ran out (a leecher exits 3)

Settings follow /work/shared/PEERS.md: listen on 127.0.0.1 only, no DHT (unless --dht-bootstrap names loopback
nodes; then the torrent is announced, and looked up every 2 s while it has no peer), no LSD, UPnP, NAT-PMP or
uTP, plain BitTorrent (no encryption), several connections per IP allowed (every peer is
127.0.0.1). The peers given with --connect are dialled with connect_peer, again every second
while the torrent has no peer at all.

Exit status: 0 when a leecher completed (or a seed reached --max-seconds), 1 on a storage error
of a leecher, 2 on bad arguments or a listen failure, 3 when a leecher ran out of time, 4 when a
seed's data does not check out. Peers connecting and leaving are logged on stderr.
Run it with Debian's /usr/bin/python3, which has python3-libtorrent.
"""
import argparse
import json
import os
import resource
import sys
import time

import libtorrent as lt


def parse_address(text):
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError("expected HOST:PORT, got %r" % text)
    return host, int(port)


def arguments():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--torrent", help="the .torrent file")
    source.add_argument("--magnet", help="a magnet link (leech only): the metadata comes from the peers (BEP 9)")
    p.add_argument("--save-path", required=True, help="the directory that holds (or receives) the data")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--seed", action="store_true", help="seed: the data must be complete")
    mode.add_argument("--leech", action="store_true", help="download, then exit 0")
    p.add_argument("--port", type=int, default=0, help="listen port on --listen-host (0: any free port)")
    p.add_argument("--listen-host", default="127.0.0.1")
    p.add_argument("--connect", action="append", type=parse_address, default=[],
                   help="HOST:PORT of a peer to dial; repeat for more")
    p.add_argument("--max-seconds", type=float, default=120.0, help="give up after this long")
    p.add_argument("--interval", type=float, default=0.5, help="seconds between status lines")
    p.add_argument("--preset", choices=["loopback", "high-performance"], default="loopback",
                   help="high-performance: libtorrent's high_performance_seed() under the loopback settings")
    p.add_argument("--upload-limit", type=int, default=0,
                   help="upload at most this many payload bytes per second to all peers together (0: no limit);"
                        " applies to loopback peers too (libtorrent exempts local peers from the global limit)")
    p.add_argument("--no-pex", action="store_true",
                   help="leave out the ut_pex plugin, so that peers learn no addresses from each other")
    p.add_argument("--dht-bootstrap", action="append", type=parse_address, default=[],
                   help="take part in a loopback DHT through this node (HOST:PORT; repeat for more), and find and"
                        " announce the torrent's peers there; settings of PEERS.md 'DHT on loopback'")
    p.add_argument("--stay", action="store_true",
                   help="a leecher keeps running (seeding) after it completes, until --max-seconds")
    p.add_argument("--report-peers", action="store_true",
                   help="status lines list the connected peers: address, port, source flags (4: PEX), outgoing")
    args = p.parse_args()
    if args.magnet and args.seed:
        p.error("--magnet is for leeching")
    return args


def emit(obj):
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


def settings_for(args):
    pack = lt.high_performance_seed() if args.preset == "high-performance" else {}
    pack.update({
        "listen_interfaces": "%s:%d" % (("[%s]" % args.listen_host) if ":" in args.listen_host else args.listen_host,
                                         args.port),
        "outgoing_interfaces": "",
        "enable_dht": False,
        "dht_bootstrap_nodes": "",
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_ip_notifier": False,
        "enable_incoming_utp": False,
        "enable_outgoing_utp": False,
        "allow_multiple_connections_per_ip": True,
        "upload_rate_limit": max(0, args.upload_limit),
        "download_rate_limit": 0,
        "out_enc_policy": 2,  # pe_disabled: plain BitTorrent
        "in_enc_policy": 1,   # pe_enabled: accept both
        "stop_tracker_timeout": 1,
        "peer_connect_timeout": 5,
        # connect_peer only adds the address to the peer list: let a refused or dropped peer be
        # dialled again after a second (the defaults wait a minute and give up after 3 failures).
        "min_reconnect_time": 1,
        "max_failcount": 1000,
        "alert_mask": (lt.alert.category_t.error_notification | lt.alert.category_t.status_notification
                       | lt.alert.category_t.storage_notification | lt.alert.category_t.connect_notification
                       | lt.alert.category_t.peer_notification),
    })
    if args.dht_bootstrap:
        # PEERS.md, "DHT on loopback": every node is 127.0.0.1, so the per-IP rules must be off; never the
        # public routers.
        pack.update({
            "enable_dht": True,
            "dht_bootstrap_nodes": ",".join("%s:%d" % b for b in args.dht_bootstrap),
            "dht_restrict_routing_ips": False,
            "dht_restrict_search_ips": False,
            "dht_prefer_verified_node_ids": False,
            "dht_block_ratelimit": 1000,
        })
    return pack


def peer_list(handle):
    peers = []
    for peer in handle.get_peer_info():
        host, port = peer.ip
        peers.append({"ip": host, "port": port, "source": int(peer.source),
                      "outgoing": bool(peer.flags & lt.peer_info.outgoing_connection)})
    return peers


def status_fields(handle, ses, started, report_peers=False):
    s = handle.status()
    fields = {
        "t": round(time.monotonic() - started, 3),
        "state": str(s.state).split(".")[-1],
        "progress": s.progress,
        "num_peers": s.num_peers,
        "num_seeds": s.num_seeds,
        "download_rate": s.download_payload_rate,
        "upload_rate": s.upload_payload_rate,
        "total_download": s.total_payload_download,
        "total_upload": s.total_payload_upload,
        "total_wanted_done": s.total_wanted_done,
        "total_wanted": s.total_wanted,
        "is_finished": s.is_finished,
        "is_seeding": s.is_seeding,
        "paused": bool(s.flags & lt.torrent_flags.paused),
        "error": str(s.errc.message()) if s.errc.value() != 0 else "",
        "listen_port": ses.listen_port(),
        "has_metadata": s.has_metadata,
    }
    if report_peers:
        fields["peers"] = peer_list(handle)
    return fields


def resources():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"cpu_seconds": round(usage.ru_utime + usage.ru_stime, 3), "peak_rss_kib": usage.ru_maxrss}


def main():
    args = arguments()
    started = time.monotonic()
    deadline = started + args.max_seconds
    info = None
    if args.torrent:
        try:
            info = lt.torrent_info(args.torrent)
        except RuntimeError as error:
            emit({"event": "error", "message": "cannot read %s: %s" % (args.torrent, error)})
            return 2

    if args.no_pex:
        # The default plugins less ut_pex: a session without them, then the other two added back.
        ses = lt.session(settings_for(args), 0)
        ses.add_extension("ut_metadata")
        ses.add_extension("smart_ban")
    else:
        ses = lt.session(settings_for(args))
    if args.upload_limit > 0:
        # Peers on local networks, loopback included, are in the "local" peer class, which the
        # session-wide upload_rate_limit does not cover: limit that class too.
        local = ses.get_peer_class(ses.local_peer_class_id)
        local["upload_limit"] = args.upload_limit
        ses.set_peer_class(ses.local_peer_class_id, local)
    for node in args.dht_bootstrap:
        ses.add_dht_node(node)
    if info is not None:
        params = lt.add_torrent_params()
        params.ti = info
    else:
        try:
            params = lt.parse_magnet_uri(args.magnet)
        except RuntimeError as error:
            emit({"event": "error", "message": "cannot read the magnet link: %s" % error})
            return 2
    params.save_path = args.save_path
    params.flags &= ~lt.torrent_flags.paused
    params.flags &= ~lt.torrent_flags.auto_managed
    handle = ses.add_torrent(params)

    listening = False
    had_metadata = info is not None
    checked = False
    flushed = False
    flushing = False
    completed_at = None
    last_status = 0.0
    last_dial = 0.0
    last_dht = 0.0
    while True:
        now = time.monotonic()
        for alert in ses.pop_alerts():
            if isinstance(alert, lt.listen_succeeded_alert):
                if not listening and alert.socket_type == lt.socket_type_t.tcp:
                    listening = True
                    emit({"event": "listening", "port": alert.port, "address": str(alert.address)})
            elif isinstance(alert, lt.listen_failed_alert):
                emit({"event": "error", "message": "cannot listen: %s" % alert.message()})
                return 2
            elif isinstance(alert, lt.torrent_checked_alert):
                checked = True
                last_status = 0.0  # say so at once: a seed is ready now
            elif isinstance(alert, lt.cache_flushed_alert):
                flushed = True
            elif isinstance(alert, (lt.file_error_alert, lt.torrent_error_alert)):
                emit({"event": "error", "message": alert.message()})
                return 4 if args.seed else 1
            elif isinstance(alert, (lt.hash_failed_alert, lt.peer_connect_alert, lt.peer_disconnected_alert,
                                    lt.peer_error_alert, lt.peer_blocked_alert, lt.incoming_connection_alert)):
                # Peers coming and going, for the failure messages of the tests (stderr).
                sys.stderr.write("%.3f %s\n" % (time.monotonic() - started, alert.message()))
                sys.stderr.flush()

        status = handle.status()
        if not had_metadata and status.has_metadata:
            had_metadata = True
            emit({"event": "metadata", "t": round(time.monotonic() - started, 3)})
        checking = status.state in (lt.torrent_status.states.checking_files,
                                    lt.torrent_status.states.checking_resume_data)

        if args.seed and checked and not status.is_seeding:
            fields = status_fields(handle, ses, started)
            emit(dict(fields, event="error", message="the data in %s is incomplete (%.1f%% after checking)"
                      % (args.save_path, 100 * status.progress)))
            return 4

        # Dial the given peers, again every second while the torrent has no peer.
        if args.connect and not checking and status.num_peers == 0 and now - last_dial >= 1.0:
            last_dial = now
            for address in args.connect:
                try:
                    handle.connect_peer(address)
                except RuntimeError as error:
                    sys.stderr.write("connect_peer %s: %s\n" % (address, error))

        # In a DHT: announce (and so look up) again every 2 s while the torrent has no peer.
        if args.dht_bootstrap and not checking and status.num_peers == 0 and now - last_dht >= 2.0:
            last_dht = now
            handle.force_dht_announce()

        if args.leech and completed_at is None and status.has_metadata and status.is_finished \
                and status.total_wanted_done == status.total_wanted:
            if not flushing:
                handle.flush_cache()
                flushing = True
                flush_started = now
            if flushed or now - flush_started > 10:
                completed_at = now
                emit(dict(status_fields(handle, ses, started, args.report_peers), event="complete", flushed=flushed,
                          **resources()))
                if not args.stay:
                    ses.pause()
                    return 0

        if now - last_status >= args.interval:
            last_status = now
            emit(dict(status_fields(handle, ses, started, args.report_peers), event="status"))

        if now >= deadline:
            emit(dict(status_fields(handle, ses, started), event="timeout", **resources()))
            return 0 if (args.seed or completed_at is not None) else 3

        ses.wait_for_alert(50)


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    # Skip the session's teardown (tracker "stopped" announces, thread joins): the data is flushed.
    os._exit(code)
