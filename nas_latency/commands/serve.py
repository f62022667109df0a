"""``nas-latency serve``: run the gRPC latency server (``server/``) until SIGTERM.

The server code is imported only when this command runs, so the library itself never imports it.
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("serve", help="run the gRPC latency server")
    parser.add_argument("--address", default="127.0.0.1:50051",
                        help="HOST:PORT to listen on (port 0 picks a free one; default 127.0.0.1:50051)")
    parser.add_argument("--store", metavar="URL", help="store URL (default: SQLite in NAS_LATENCY_HOME)")
    parser.add_argument("--token-file", metavar="F", help="writes need `authorization: Bearer <content of F>`")
    parser.add_argument("--tls-cert", metavar="PEM", help="certificate chain (with --tls-key: serve TLS)")
    parser.add_argument("--tls-key", metavar="PEM", help="private key of --tls-cert")
    parser.add_argument("--spaces", nargs="+", metavar="SPACE",
                        help="spaces whose models load before health turns SERVING (default: all; others load on use)")
    parser.add_argument("--max-workers", type=int, default=32, help="RPC worker threads (default 32)")
    parser.add_argument("--max-archs", type=int, help="archs per Predict request (default 100000)")
    parser.add_argument("--max-layers", type=int, help="layers per network (default 10000)")
    parser.add_argument("--max-message-mib", type=int, help="largest message in MiB (default 64)")
    parser.add_argument("--grace-s", type=float, default=10.0, help="seconds in-flight calls get on SIGTERM")
    parser.add_argument("--device-ttl-s", type=float, default=1.0,
                        help="re-read a device's measurements from the store at most this long after the last read "
                             "(other replicas' writes show within it; default 1)")
    parser.add_argument("--refresh-s", type=float, default=5.0,
                        help="check the store for newer models and devices this often (default 5)")
    parser.add_argument("--devices-refresh-s", type=float, default=60.0,
                        help="re-read every known device for the nearest-device lists this often (another "
                             "replica's registrations show there within it; predictions follow --device-ttl-s; "
                             "default 60)")
    parser.add_argument("--max-identifier-chars", type=int,
                        help="characters of an arch id, device or space name, request id (default 4096)")
    parser.add_argument("--max-text-chars", type=int,
                        help="characters of a description or environment_json (default 65536)")
    parser.add_argument("--log-format", choices=("json", "text"), default="json", help="stderr log format")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import logging

    from server.app import configure_logging, serve
    from server.limits import MIB, Limits

    overrides = {}
    if args.max_archs is not None:
        overrides["max_archs_per_request"] = args.max_archs
    if args.max_layers is not None:
        overrides["max_layers_per_network"] = args.max_layers
    if args.max_message_mib is not None:
        overrides["max_message_bytes"] = args.max_message_mib * MIB
    if args.max_identifier_chars is not None:
        overrides["max_identifier_chars"] = args.max_identifier_chars
    if args.max_text_chars is not None:
        overrides["max_text_chars"] = args.max_text_chars
    configure_logging(logging.DEBUG if args.verbose >= 2 else logging.INFO, args.log_format)
    return serve(args.address, store_url=args.store, token_file=args.token_file, tls_cert=args.tls_cert,
                 tls_key=args.tls_key, spaces=args.spaces, limits=Limits(**overrides), max_workers=args.max_workers,
                 grace_s=args.grace_s, device_ttl_s=args.device_ttl_s, refresh_s=args.refresh_s,
                 devices_refresh_s=args.devices_refresh_s)
