"""`rrsis sessions list|show|stats|export`: inspect the session log and export training pairs.

    rrsis sessions list [--since DATE] [--limit N] [--db URL]
    rrsis sessions show SESSION_ID [--db URL]
    rrsis sessions stats [--json] [--db URL]
    rrsis sessions export --format jsonl|coco|geojson --out PATH [--since DATE] [--status accepted]
                          [--images reference|copy] [--allowed-root DIR ...] [--db URL]
"""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "sessions", help="inspect the session log and export training pairs",
        description="Inspect the session database (default $RRSIS_DB or ./sessions.db) and export "
        "accepted annotations.",
    )
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    def common(sp):
        sp.add_argument("--db", default=None, help="database file or SQLAlchemy URL (default $RRSIS_DB or ./sessions.db)")
        return sp

    ls = common(sub.add_parser("list", help="list sessions, newest first"))
    ls.add_argument("--since", default=None, help="only sessions started on/after this date (YYYY-MM-DD)")
    ls.add_argument("--limit", type=int, default=50)
    show = common(sub.add_parser("show", help="one session with its turns and annotations"))
    show.add_argument("session_id", help="session id or a unique prefix (see `rrsis sessions list`)")
    st = common(sub.add_parser("stats", help="counts of sessions, turns and annotations"))
    st.add_argument("--json", action="store_true", help="print JSON")
    st.add_argument("--estimated-iou", action="store_true",
                    help="also score the estimated IoU logged with each turn of the accepted annotations against the "
                         "mask the labeller accepted, next to the decoder's IoU head (reads every accepted mask)")
    ex = common(sub.add_parser("export", help="export annotations as training pairs"))
    ex.add_argument("--format", required=True, choices=["jsonl", "coco", "geojson"])
    ex.add_argument("--out", required=True, help="output file (jsonl: masks/ and images/ are written beside it)")
    ex.add_argument("--since", default=None, help="only annotations made on/after this date (YYYY-MM-DD)")
    ex.add_argument("--status", default="accepted", choices=["accepted", "rejected", "skipped"])
    ex.add_argument("--images", default="reference", choices=["reference", "copy"],
                    help="reference the image files (relative paths) or copy them into images/")
    ex.add_argument("--allowed-root", action="append", default=None, metavar="DIR",
                    help="folder images may come from (repeatable; default the current folder and $RRSIS_ALLOWED_ROOTS)")
    ex.add_argument("--limit", type=int, default=None, help="export at most N annotations")
    p.set_defaults(func=run)


def _fmt_time(t) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S") if t is not None else "-"


def run(args: argparse.Namespace) -> int:
    from rrsis_engine.store import open_store

    store = open_store(args.db)
    try:
        if args.action == "list":
            rows = store.list_sessions(since=args.since, limit=args.limit)
            if not rows:
                print("no sessions")
                return 0
            print(f"{'session':10} {'started (UTC)':19} {'client':6} {'turns':>5} {'acc':>4}  annotator  image")
            for r in rows:
                print(f"{r['id'][:10]} {_fmt_time(r['started_at'])} {r['client']:6} {r['turns']:>5} {r['accepted']:>4}  "
                      f"{(r['annotator'] or '-'):10} {r['image_path'] or '-'}")
        elif args.action == "show":
            s = store.get_session(args.session_id)
            img = s["image"]
            print(f"session {s['id']}  client={s['client']}  annotator={s['annotator'] or '-'}  "
                  f"model={s['model_version'] or '-'}")
            print(f"started {_fmt_time(s['started_at'])}  ended {_fmt_time(s['ended_at'])}")
            print(f"image {img['path'] or '-'}  {img['width']}×{img['height']}  sha256 {img['hash'][:16]}…  "
                  f"crs={img['crs'] or '-'}")
            for t in s["turns"]:
                prompt = t.text if t.kind in ("text", "pick") else (t.points[-1] if t.kind == "click" and t.points else
                                                          t.box if t.kind == "box" else "")
                iou = "-" if t.iou_score is None else f"{t.iou_score:.2f}"
                est = "" if t.quality is None else f" est_iou={t.quality:.2f}"
                flag = " (undone)" if t.undone else ""
                print(f"  #{t.seq:<4} {t.kind:5} {str(prompt)[:60]!s:60} iou={iou}{est}{flag}")
            for a in s["annotations"]:
                print(f"  annotation {a['id']}: {a['status']} {a['expressions']} area={a['area']} px")
        elif args.action == "stats":
            stats = store.stats()
            if args.estimated_iou:
                from rrsis_engine.quality import logged_estimates, score_estimates

                annotations = store.iter_annotations(status="accepted", with_turns=True)
                stats["estimated_iou_vs_accepted"] = score_estimates(logged_estimates(annotations))
            if args.json:
                print(json.dumps(stats, default=str, indent=2))
            else:
                for k, val in stats.items():
                    print(f"{k:32} {val}")
        elif args.action == "export":
            from rrsis_engine.store.export import export_annotations

            summary = export_annotations(
                store, args.format, args.out, status=args.status, since=args.since, images=args.images,
                allowed_roots=args.allowed_root, limit=args.limit,
            )
            print(f"exported {summary.exported} {args.status} annotation(s) to {summary.out}", end="")
            print(f" ({summary.images} image(s))" if args.format != "geojson" else "")
            if summary.skipped:
                print(f"skipped: {summary.skipped} (images outside --allowed-root or missing are never read)",
                      file=sys.stderr)
        return 0
    finally:
        store.close()
