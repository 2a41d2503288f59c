"""The studio's drafts-page and analysis queries on a synthetic store at paper scale and beyond.

Builds (once, cached at --db) a store of one run with 250,000 questions × 4 rationales = 1 M drafts,
one student's ICL score per draft and 40 preference items per draft = 40 M item rows, then times
each studio query (median of --repeat runs after a warm-up) and, as the baseline in the same run,
the naive way a UI would do it: read the run's drafts into pandas and filter, sort and page there.

    .venv/bin/python benchmarks/store_queries.py [--db /tmp/arte-bench-1m.duckdb] [--questions 250000]

Last line: `slowest_query_ms: X`.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from arte_core.store import Store  # noqa: E402
from arte_core.store import analysis, drafts  # noqa: E402
from arte_core.store.facts import ensure_draft_facts, ensure_search_texts  # noqa: E402

RUN, STUDENT = "bench", "student-a"
TECHNIQUES = "['expert_procedure', 'common_sense', 'task_description', 'eliminate_options']"


def build(store: Store, n_questions: int, n_items: int) -> None:
    """Synthetic rows written with set-based SQL (the engine never writes this much at once). Each
    rationale text starts with a distinct hash, so text search cannot run on a small dictionary."""
    with store.transaction():
        store.execute("INSERT INTO runs VALUES (?, 'boolean_expressions', 'builtin', 'teacher', ?, 'fp', 'bench', now())",
                      [RUN, STUDENT])
        store.execute(f"""
            INSERT INTO pref_items SELECT '{RUN}', i, 'preference question ' || i, 'True' FROM range({n_items}) t(i)""")
        store.execute(f"""
            INSERT INTO questions
            SELECT '{RUN}:draft:q' || lpad(i::VARCHAR, 7, '0'), '{RUN}', 'draft', i,
                   'True and ' || CASE WHEN i % 3 = 0 THEN 'not ' ELSE '' END || 'False or True is #' || i,
                   CASE WHEN i % 2 = 0 THEN 'True' ELSE 'False' END,
                   CASE WHEN i % 7 = 0 THEN NULL ELSE 'True' END, i % 5 <> 0, 'teacher', i // 5, now()
            FROM range(?) t(i)""", [n_questions])
        store.execute(f"""
            INSERT INTO rationales
            SELECT q.question_id || ':' || t.technique, q.question_id, '{RUN}', 'draft', t.technique, 'prompt',
                   md5(q.question_id || t.technique) || ' ' || repeat('step ', (q.idx * 7 + t.k * 13) % 120 + 5)
                     || 'So the answer is True.',
                   'True', true, (q.idx + t.k) % 4 <> 0, (q.idx * 7 + t.k * 13) % 120 + 5, 60, 'teacher', 0.7, 0, now()
            FROM questions q, (SELECT unnest({TECHNIQUES}) AS technique, generate_subscripts({TECHNIQUES}, 1) AS k) t
            WHERE q.run_id = '{RUN}'""")
        store.execute(f"""
            INSERT INTO icl_scores
            SELECT rationale_id, '{STUDENT}', '{RUN}', ((hash(rationale_id) % 41) / 40.0), {n_items},
                   (hash(rationale_id) % 41)::INTEGER, 0, 'completion', now()
            FROM rationales WHERE run_id = '{RUN}'""")
    with store.transaction():
        store.execute(f"""
            INSERT INTO icl_items
            SELECT r.rationale_id, '{STUDENT}', k.i, 'So the answer is True.', 'True', (hash(r.rationale_id) + k.i) % 2 = 0
            FROM rationales r, range({n_items}) k(i) WHERE r.run_id = '{RUN}'
            ORDER BY r.rationale_id, k.i""")  # as the score stage writes them: one draft's items together
    store.execute("CHECKPOINT")


def studio_queries(store: Store) -> dict:
    """What the Drafts and Analysis tabs ask for, with the studio's own functions."""
    n_drafts = store.scalar("SELECT count(*) FROM rationales WHERE run_id = ?", [RUN])
    some_draft = store.scalar("SELECT rationale_id FROM rationales WHERE run_id = ? ORDER BY rationale_id "
                              "LIMIT 1 OFFSET ?", [RUN, n_drafts // 2])
    fresh_terms = itertools.count(100_000)  # never searched before: the text scan is not cached
    return {
        "drafts page (sort by score)": lambda: drafts.drafts_page(store, RUN, STUDENT, drafts.DraftFilter()),
        "drafts page (filtered, page 40)": lambda: drafts.drafts_page(store, RUN, STUDENT, drafts.DraftFilter(
            technique="common_sense", min_score=0.3, max_words=80, matches_target=True, page=40)),
        "drafts page (text search, a third match)": lambda: drafts.drafts_page(store, RUN, STUDENT, drafts.DraftFilter(
            search="not False", sort="length")),
        "drafts page (text search, a new term each time)": lambda: drafts.drafts_page(
            store, RUN, STUDENT, drafts.DraftFilter(search=f"is #{next(fresh_terms)}", sort="length")),
        "drafts page after a write (signature check)": lambda: (store.mark_done(RUN, "bench-write"),
                                                                drafts.drafts_page(store, RUN, STUDENT, drafts.DraftFilter())),
        "draft detail (40 item answers)": lambda: drafts.rationale_detail(store, some_draft, STUDENT),
        "length vs accuracy (points)": lambda: analysis.length_accuracy(store, RUN, STUDENT),
        "length vs accuracy (bins)": lambda: analysis.length_bins(store, RUN, STUDENT, 25),
        "accuracy by technique": lambda: analysis.accuracy_by_technique(store, RUN, STUDENT),
        "question scores": lambda: analysis.question_scores(store, RUN, STUDENT),
        "teacher answer wrong vs right": lambda: analysis.teacher_answer_accuracy(store, RUN, STUDENT),
        "draft vs regenerated scores": lambda: analysis.origin_scores(store, RUN, STUDENT),
    }


def naive_drafts_page(store: Store):
    """Baseline: the whole run into pandas, then filter, sort and page in Python."""
    frame = store.df("SELECT r.*, q.input AS question, q.target, s.accuracy FROM rationales r "
                     "JOIN questions q USING (question_id) "
                     "LEFT JOIN icl_scores s ON s.rationale_id = r.rationale_id AND s.student = ? "
                     "WHERE r.run_id = ?", [STUDENT, RUN])
    return frame.sort_values("accuracy", ascending=False).head(25)


def naive_search(store: Store, needle: str) -> int:
    """Baseline: a case-insensitive scan (ILIKE) of the stored question, rationale and answer texts."""
    pattern = f"%{needle}%"
    return store.scalar("SELECT count(*) FROM rationales r JOIN questions q USING (question_id) WHERE r.run_id = ? "
                        "AND (q.input ILIKE ? OR r.text ILIKE ? OR r.answer ILIKE ?)", [RUN, pattern, pattern, pattern])


def median_ms(fn, repeat: int) -> float:
    fn()  # warm-up: first touch of the columns
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="/tmp/arte-bench-1m.duckdb")
    parser.add_argument("--questions", type=int, default=250_000)
    parser.add_argument("--items", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    fresh = not Path(args.db).exists()
    with Store(args.db) as store:
        if fresh:
            started = time.time()
            build(store, args.questions, args.items)
            print(f"built {args.db} in {time.time() - started:.0f} s")
        drafts = store.scalar("SELECT count(*) FROM rationales WHERE run_id = ?", [RUN])
        items = store.scalar("SELECT count(*) FROM icl_items")
        print(f"store: {drafts:,} drafts, {items:,} item rows")
        started = time.perf_counter()
        ensure_draft_facts(store, RUN, STUDENT)  # once per app session, run and student (and after new scores)
        build_ms = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        ensure_search_texts(store, RUN)  # on a run's first search (and after a write that changes its texts)
        texts_ms = (time.perf_counter() - started) * 1000
        results = {name: median_ms(fn, args.repeat) for name, fn in studio_queries(store).items()}
        baseline = median_ms(lambda: naive_drafts_page(store), max(3, args.repeat // 2))
        naive_terms = itertools.count(200_000)
        search_baseline = median_ms(lambda: naive_search(store, f"is #{next(naive_terms)}"), max(3, args.repeat // 2))
    width = max(map(len, results))
    for name, ms in results.items():
        print(f"{name:{width}}  {ms:9.1f} ms")
    print(f"{'facts table build (first view; not a query)':{width}}  {build_ms:9.1f} ms")
    print(f"{'lower-cased texts build (first search; not a query)':{width}}  {texts_ms:9.1f} ms")
    page = results["drafts page (sort by score)"]
    print(f"{'baseline: drafts page via pandas':{width}}  {baseline:9.1f} ms  ({baseline / page:.1f}x slower than the studio query)")
    search = results["drafts page (text search, a new term each time)"]
    print(f"{'baseline: a new term, ILIKE on the stored texts':{width}}  {search_baseline:9.1f} ms  "
          f"({search_baseline / search:.1f}x the studio's whole search page)")
    print(f"slowest_query_ms: {max(results.values()):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
