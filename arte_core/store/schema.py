"""The DuckDB schema of an ARTE Studio project store (docs/architecture.md explains each table)."""

from arte_core.store.student_schema import (SCHEMA_4_RESULT_COLUMNS, STUDENT_KEYED_COLUMNS,  # noqa: F401
                                            STUDENT_STAGES_SINCE_5, STUDENT_TABLES, fill_run_students,
                                            migrate_to_5, run_student_sql)

SCHEMA_VERSION = 7

# influence_items (TABLES), spelled once for the table and its migration.
INFLUENCE_ITEMS_COLUMNS = """
        rationale_id VARCHAR NOT NULL,
        student VARCHAR NOT NULL,
        run_id VARCHAR NOT NULL,
        item_index INTEGER NOT NULL,
        loss_before DOUBLE NOT NULL,
        loss_after DOUBLE NOT NULL,
        PRIMARY KEY (rationale_id, student, item_index)
    """

# item_candidates and candidate_answers (TABLES): an `irt` selection's candidate pool and its pilot.
ITEM_CANDIDATES_COLUMNS = """
        run_id VARCHAR NOT NULL,
        item_index INTEGER NOT NULL,
        input VARCHAR NOT NULL,
        target VARCHAR NOT NULL,
        selected BOOLEAN NOT NULL,
        difficulty DOUBLE,
        discrimination DOUBLE,
        information DOUBLE NOT NULL,
        n_pilot INTEGER NOT NULL,
        n_pilot_correct INTEGER NOT NULL,
        student VARCHAR NOT NULL,
        fit VARCHAR NOT NULL,
        created_at TIMESTAMP NOT NULL,
        PRIMARY KEY (run_id, item_index)
    """
# One answer to a preference item, as icl_items keeps it; candidate_answers (a pilot draft's answer to an
# 'irt' candidate item) is the same row with its run.
ICL_ITEM_COLUMNS = """
        rationale_id VARCHAR NOT NULL,
        student VARCHAR NOT NULL,
        item_index INTEGER NOT NULL,
        output VARCHAR NOT NULL,
        answer VARCHAR,
        correct BOOLEAN NOT NULL,
        parse_mode VARCHAR,
        truncated BOOLEAN,
        answer_logprob DOUBLE,
        answer_logprob_per_token DOUBLE,
        PRIMARY KEY (rationale_id, student, item_index)
    """
CANDIDATE_ANSWERS_COLUMNS = "\n        run_id VARCHAR NOT NULL," + ICL_ITEM_COLUMNS

# Statements that bring a store of the previous version up to each version (`Store` runs them when it
# opens a store read-write). New columns go at the end of their table, so an upgraded table and a
# new one have the same column order.
MIGRATIONS: dict[int, list[str]] = {
    2: ["ALTER TABLE pairs ADD COLUMN style VARCHAR DEFAULT 'arte'"],
    # How each answer was read, and chance-corrected scores. Rows scored before keep NULL: their answers
    # were read by the old parser and nothing recomputes them unless the user rescores.
    3: ["ALTER TABLE icl_scores ADD COLUMN balanced_accuracy DOUBLE",
        "ALTER TABLE icl_scores ADD COLUMN label_copy_rate DOUBLE",
        "ALTER TABLE icl_scores ADD COLUMN n_truncated INTEGER",
        "ALTER TABLE icl_scores ADD COLUMN n_lenient INTEGER",
        "ALTER TABLE icl_items ADD COLUMN parse_mode VARCHAR",
        "ALTER TABLE icl_items ADD COLUMN truncated BOOLEAN",
        "ALTER TABLE evaluations ADD COLUMN n_truncated INTEGER",
        "ALTER TABLE eval_items ADD COLUMN parse_mode VARCHAR",
        "ALTER TABLE eval_items ADD COLUMN truncated BOOLEAN"],
    # Per-reference-item losses of each influence probe, so the influence signal's split-half
    # reliability can be computed (create_statements makes the table; listed here as the upgrade's record).
    4: ["CREATE TABLE IF NOT EXISTS influence_items (" + " ".join(INFLUENCE_ITEMS_COLUMNS.split()) + ")",
        # Each pair's paired exact test on the items both sides answered (stages/pair_evidence.py).
        # Pairs built before keep NULL: "not tested" until the pairs are rebuilt.
        "ALTER TABLE pairs ADD COLUMN p_value DOUBLE",
        "ALTER TABLE pairs ADD COLUMN n_shared INTEGER",
        "ALTER TABLE pairs ADD COLUMN n_chosen_only INTEGER",
        "ALTER TABLE pairs ADD COLUMN n_rejected_only INTEGER",
        "ALTER TABLE pairs ADD COLUMN pair_test VARCHAR",
        # score.selection = irt: the candidate pool with each item's 2PL fit, and the pilot's answers on it.
        "CREATE TABLE IF NOT EXISTS item_candidates (" + " ".join(ITEM_CANDIDATES_COLUMNS.split()) + ")",
        "CREATE TABLE IF NOT EXISTS candidate_answers (" + " ".join(CANDIDATE_ANSWERS_COLUMNS.split()) + ")",
        # The config sections each stage ran with (pipeline.run_stage). Stages done before keep NULL: what
        # they ran with was not recorded.
        "ALTER TABLE stage_status ADD COLUMN config_json VARCHAR"],
    # Results keyed by student (align, regenerate, distill, evaluate belong to a (run, student)).
    5: migrate_to_5(),
    # score.metric = answer_logprob (models/logprob.py): each answer's teacher-forced log-probability of its
    # target after the answer cue (summed over the target's tokens, and per token), and each draft's mean.
    # Drafts scored before keep NULL until `arte score --score.metric answer_logprob` fills them in.
    # IF NOT EXISTS: migrations 5 and 6 were written side by side; either may meet the other's tables.
    6: [f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} DOUBLE"
        for table in ("icl_items", "candidate_answers") for column in ("answer_logprob", "answer_logprob_per_token")]
       + ["ALTER TABLE icl_scores ADD COLUMN IF NOT EXISTS mean_answer_logprob DOUBLE"],
    # A bulk decision's rows share a bulk id (the batch's first decision id), so the batch can be undone as
    # one. Decisions recorded before keep NULL: each is undone on its own.
    7: ["ALTER TABLE pair_decisions ADD COLUMN IF NOT EXISTS bulk_id BIGINT"],
}

TABLES: dict[str, str] = {
    "runs": """
        run_id VARCHAR PRIMARY KEY,
        task VARCHAR NOT NULL,
        task_source VARCHAR NOT NULL,
        teacher VARCHAR NOT NULL,
        student VARCHAR NOT NULL,
        fingerprint VARCHAR NOT NULL,
        config_yaml VARCHAR NOT NULL,
        created_at TIMESTAMP NOT NULL
    """,
    # A stage is marked done only after all of its rows are committed; a rerun skips done stages.
    # config_json: the config sections the stage ran with (NULL: marked done before schema 4).
    "stage_status": """
        run_id VARCHAR NOT NULL,
        stage VARCHAR NOT NULL,
        scope VARCHAR NOT NULL,
        finished_at TIMESTAMP NOT NULL,
        info_json VARCHAR,
        config_json VARCHAR,
        PRIMARY KEY (run_id, stage, scope)
    """,
    "pref_items": """
        run_id VARCHAR NOT NULL,
        item_index INTEGER NOT NULL,
        input VARCHAR NOT NULL,
        target VARCHAR NOT NULL,
        PRIMARY KEY (run_id, item_index)
    """,
    "test_items": """
        run_id VARCHAR NOT NULL,
        item_index INTEGER NOT NULL,
        input VARCHAR NOT NULL,
        target VARCHAR NOT NULL,
        PRIMARY KEY (run_id, item_index)
    """,
    # The alignment check's held-out items (stages/check.py): drawn from the task's pool outside the
    # preference and test splits and every question of the run, stratified by label, once per run.
    "check_items": """
        run_id VARCHAR NOT NULL,
        item_index INTEGER NOT NULL,
        input VARCHAR NOT NULL,
        target VARCHAR NOT NULL,
        PRIMARY KEY (run_id, item_index)
    """,
    # The student's answer to one check item with a base ('base') or aligned ('arte') teacher draft as its
    # only demo (the score stage's one-shot prompt; parse_mode and truncated as in icl_items).
    "alignment_scores": """
        run_id VARCHAR NOT NULL,
        student VARCHAR NOT NULL,
        origin VARCHAR NOT NULL,
        rationale_id VARCHAR NOT NULL,
        item_index INTEGER NOT NULL,
        output VARCHAR NOT NULL,
        answer VARCHAR,
        correct BOOLEAN NOT NULL,
        parse_mode VARCHAR,
        truncated BOOLEAN,
        PRIMARY KEY (run_id, student, rationale_id, item_index)
    """,
    # student (schema 5): '' for the drafts (origin 'draft', shared by every student), else the student
    # whose arm ('arte': the teacher aligned to them, 'base': the unaligned teacher under the same settings).
    "generation_calls": STUDENT_KEYED_COLUMNS["generation_calls"],
    "questions": """
        question_id VARCHAR PRIMARY KEY,
        run_id VARCHAR NOT NULL,
        origin VARCHAR NOT NULL,
        idx INTEGER NOT NULL,
        input VARCHAR NOT NULL,
        target VARCHAR NOT NULL,
        solver_target VARCHAR,
        solver_agrees BOOLEAN,
        teacher VARCHAR NOT NULL,
        call_index INTEGER NOT NULL,
        created_at TIMESTAMP NOT NULL,
        student VARCHAR DEFAULT ''
    """,
    "rationales": """
        rationale_id VARCHAR PRIMARY KEY,
        question_id VARCHAR NOT NULL,
        run_id VARCHAR NOT NULL,
        origin VARCHAR NOT NULL,
        technique VARCHAR NOT NULL,
        prompt VARCHAR NOT NULL,
        text VARCHAR NOT NULL,
        answer VARCHAR,
        answer_parsed BOOLEAN NOT NULL,
        matches_target BOOLEAN NOT NULL,
        word_count INTEGER NOT NULL,
        n_tokens INTEGER NOT NULL,
        teacher VARCHAR NOT NULL,
        temperature DOUBLE NOT NULL,
        seed BIGINT NOT NULL,
        created_at TIMESTAMP NOT NULL,
        student VARCHAR DEFAULT ''
    """,
    "icl_scores": """
        rationale_id VARCHAR NOT NULL,
        student VARCHAR NOT NULL,
        run_id VARCHAR NOT NULL,
        accuracy DOUBLE NOT NULL,
        n_items INTEGER NOT NULL,
        n_correct INTEGER NOT NULL,
        n_unparsed INTEGER NOT NULL,
        icl_format VARCHAR NOT NULL,
        created_at TIMESTAMP NOT NULL,
        balanced_accuracy DOUBLE,
        label_copy_rate DOUBLE,
        n_truncated INTEGER,
        n_lenient INTEGER,
        mean_answer_logprob DOUBLE,
        PRIMARY KEY (rationale_id, student)
    """,
    # parse_mode: 'strict' (the task's explicit answer form), 'lenient' (the last answer word of a
    # finished output) or 'none'; truncated: the output hit its token cap (arte_core/tasks/answers.py).
    "icl_items": ICL_ITEM_COLUMNS,
    # Montessori-Instruct's local data influence of one draft on one student: the change of the mean
    # reference loss after one optimizer step on the draft (negative = the draft helps).
    "influence_scores": """
        rationale_id VARCHAR NOT NULL,
        student VARCHAR NOT NULL,
        run_id VARCHAR NOT NULL,
        loss_before DOUBLE NOT NULL,
        loss_after DOUBLE NOT NULL,
        influence DOUBLE NOT NULL,
        mode VARCHAR NOT NULL,
        learning_rate DOUBLE NOT NULL,
        n_reference INTEGER NOT NULL,
        created_at TIMESTAMP NOT NULL,
        PRIMARY KEY (rationale_id, student)
    """,
    # One row per draft and reference item of an influence probe: the item's loss before and after
    # the step (the draft's influence is the mean of loss_after - loss_before over its items).
    "influence_items": INFLUENCE_ITEMS_COLUMNS,
    # p_value: the pair's paired exact test on the n_shared items both sides answered; n_chosen_only /
    # n_rejected_only: the discordant items (only the chosen / only the rejected side right, or for
    # question pairs the items where its rationales did better); pair_test names the test, or says
    # why there is none ('none: ...'). NULL everywhere on pairs built before schema 4.
    "pairs": """
        pair_id VARCHAR PRIMARY KEY,
        run_id VARCHAR NOT NULL,
        student VARCHAR NOT NULL,
        kind VARCHAR NOT NULL,
        signal VARCHAR NOT NULL,
        prompt VARCHAR NOT NULL,
        chosen VARCHAR NOT NULL,
        rejected VARCHAR NOT NULL,
        chosen_ref VARCHAR NOT NULL,
        rejected_ref VARCHAR NOT NULL,
        chosen_score DOUBLE NOT NULL,
        rejected_score DOUBLE NOT NULL,
        margin DOUBLE NOT NULL,
        created_at TIMESTAMP NOT NULL,
        style VARCHAR DEFAULT 'arte',
        p_value DOUBLE,
        n_shared INTEGER,
        n_chosen_only INTEGER,
        n_rejected_only INTEGER,
        pair_test VARCHAR
    """,
    # score.selection = irt: every candidate preference item, written once when the 2PL fit over the pilot
    # drafts' answers is made (stages/score.py). selected: kept in pref_items (the n_pref with the most
    # information over the pilot drafts' abilities); difficulty and discrimination: the 2PL parameters,
    # NULL for an item every pilot draft got right or every one got wrong, or when no fit was possible
    # (`fit` says which: 'girth 2PL MML/EAP' or 'skipped: ...'); information: the item's Fisher
    # information averaged over the pilot drafts' estimated abilities; student: whose pilot was fitted.
    "item_candidates": ITEM_CANDIDATES_COLUMNS,
    # The pilot drafts' answers on every candidate item (icl_items' columns); the selected items' answers
    # are copied into icl_items when the fit is made, so the pilot drafts' scores count only those.
    "candidate_answers": CANDIDATE_ANSWERS_COLUMNS,
    # The audit trail of human decisions on pairs: rows are only ever added, never updated.
    "pair_decisions": """
        decision_id BIGINT PRIMARY KEY,
        pair_id VARCHAR NOT NULL,
        action VARCHAR NOT NULL,
        who VARCHAR NOT NULL,
        why VARCHAR NOT NULL,
        undoes BIGINT,
        decided_at TIMESTAMP NOT NULL,
        bulk_id BIGINT
    """,
    # student (schema 5): whose results these are; every row after scoring belongs to a (run, student).
    "artifacts": STUDENT_KEYED_COLUMNS["artifacts"],
    "train_logs": STUDENT_KEYED_COLUMNS["train_logs"],
    "sft_examples": STUDENT_KEYED_COLUMNS["sft_examples"],
    "evaluations": STUDENT_KEYED_COLUMNS["evaluations"],
    # Runs launched from the studio: each executes in a child process with its own job store,
    # which the owner of this store ingests when the child ends.
    "jobs": """
        job_id VARCHAR PRIMARY KEY,
        run_id VARCHAR NOT NULL,
        stages VARCHAR NOT NULL,
        status VARCHAR NOT NULL,
        pid INTEGER,
        job_dir VARCHAR NOT NULL,
        config_yaml VARCHAR NOT NULL,
        who VARCHAR NOT NULL,
        message VARCHAR,
        started_at TIMESTAMP NOT NULL,
        finished_at TIMESTAMP
    """,
    "eval_items": STUDENT_KEYED_COLUMNS["eval_items"],
}

# `arte pilot` (arte_core/pilot.py, store/pilot.py): one row per student × built-in task × difficulty level
# × shots × seed × size, the student's accuracy there with its Wilson interval against the task's baseline.
# Belongs to no run: kept by the store it was measured into, never exported with a run (store/transfer.py).
TABLES["pilot_results"] = """
        student VARCHAR NOT NULL,
        task VARCHAR NOT NULL,
        level INTEGER NOT NULL,
        default_level INTEGER NOT NULL,
        level_meaning VARCHAR NOT NULL,
        shots INTEGER NOT NULL,
        seed INTEGER NOT NULL,
        n_items INTEGER NOT NULL,
        n_correct INTEGER NOT NULL,
        accuracy DOUBLE NOT NULL,
        ci_low DOUBLE NOT NULL,
        ci_high DOUBLE NOT NULL,
        baseline DOUBLE NOT NULL,
        baseline_kind VARCHAR NOT NULL,
        n_unparsed INTEGER NOT NULL,
        n_truncated INTEGER NOT NULL,
        max_new_tokens INTEGER NOT NULL,
        seconds_per_item DOUBLE NOT NULL,
        in_zone BOOLEAN NOT NULL,
        created_at TIMESTAMP NOT NULL,
        PRIMARY KEY (student, task, level, shots, seed, n_items)
    """

INDEXES = [
    "CREATE INDEX IF NOT EXISTS questions_run ON questions(run_id, origin)",
    "CREATE INDEX IF NOT EXISTS rationales_question ON rationales(question_id)",
    "CREATE INDEX IF NOT EXISTS rationales_run ON rationales(run_id, origin)",
    "CREATE INDEX IF NOT EXISTS icl_scores_run ON icl_scores(run_id, student)",
    "CREATE INDEX IF NOT EXISTS pairs_run ON pairs(run_id, student, kind)",
    "CREATE INDEX IF NOT EXISTS decisions_pair ON pair_decisions(pair_id)",
]


def create_statements() -> list[str]:
    stmts = ["CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"]
    stmts += [f"CREATE TABLE IF NOT EXISTS {name} ({cols})" for name, cols in TABLES.items()]
    return stmts + INDEXES


def table_columns(table: str) -> set[str]:
    """The column names of one table of the schema."""
    return {line.split()[0] for line in TABLES[table].strip().splitlines()
            if line.split() and line.split()[0] not in ("PRIMARY", "UNIQUE")}
