"""Bulk sends on Azurite, steps run in the test: rows become packages once, bad rows are reported."""

from __future__ import annotations

import json

import pytest

from shared.bulk import feeder, jobs
from shared.bulk.spec import package_ref_for_row
from shared.storage import names
from shared.storage.bulk import JobState
from shared.storage.status import PackageStatus
from tests.bulk.bulk_support import (
    csv_bytes,
    job_blob,
    job_spec,
    new_job_id,
    people,
    report_rows,
    run_steps,
    summary,
    upload,
    upload_job,
)
from tests.pipeline.intake_support import World, base_env

pytestmark = []


@pytest.fixture()
def world(storage_connection_string: str) -> World:
    return World(base_env(storage_connection_string, BULK_REPORT_INTERVAL_S="0", BULK_STEP_ROWS="7",
                          CONNECTIVE_RATE_CALLS="1000"))


def _read_all(job: object) -> bool:
    return bool(getattr(job, "read_done", False)) or getattr(job, "state", None) is JobState.INPUT_REJECTED


def test_every_good_row_becomes_one_package_and_bad_rows_are_reported(world: World) -> None:
    store, job_id = world.store, new_job_id()
    rows = people(12)
    rows[3][0] = "not-an-email"
    rows[5][1] = rows[5][2] = ""  # no name
    rows[7][4] = ""  # {Department} used by the template, empty here
    rows.append(list(rows[0]))  # the same e-mail again
    spec = job_spec(name="Policy 2027 - {FirstName} {LastName} ({Department})")
    upload_job(store, job_id, spec, csv_bytes(rows))
    started = jobs.start_from_blob(store, world.settings, job_blob(store, job_id))
    assert started is not None and started.state is JobState.SENDING

    job = run_steps(store, world.settings, job_id, _read_all)
    assert job.state is JobState.TRACKING
    good = [n for n in range(12) if n not in (3, 5, 7)]
    for n in good:
        record = world.row(package_ref_for_row(job_id, f"person{n}@example.com"))
        assert record.status is PackageStatus.RECEIVED and record.bulk_job == job_id
        assert record.spec["request"]["name"] == f"Policy 2027 - First{n} Last{n} (Sales)"
        assert record.spec["request"]["signers"][0]["email"] == f"person{n}@example.com"
    report = {row["line"]: row for row in report_rows(store, job_id)}
    assert report["5"]["status"] == "Skipped" and report["5"]["reason"].startswith("email_invalid")
    assert report["7"]["reason"].startswith("name_missing")
    assert report["9"]["reason"].startswith("template_field_missing")
    assert report["14"]["reason"].startswith("duplicate_key") and "line 2" in report["14"]["reason"]
    assert sum(1 for row in report.values() if row["status"] == "Received") == len(good)
    assert summary(store, job_id)["rows"] == {"total": 13, "packages": 9, "skipped": 4}


def test_reupload_and_appended_rows_create_only_the_new_packages(world: World) -> None:
    store, job_id = world.store, new_job_id()
    upload_job(store, job_id, job_spec(), csv_bytes(people(5)))
    jobs.start_from_blob(store, world.settings, job_blob(store, job_id))
    run_steps(store, world.settings, job_id, _read_all)
    first = {row.package_ref for row in store.bulk.rows(job_id)}
    assert len(first) == 5

    # The same file again, then with three rows appended (and one moved): only those three are new.
    upload_job(store, job_id, job_spec(), csv_bytes(people(5)))
    again = jobs.start_from_blob(store, world.settings, job_blob(store, job_id))
    assert again is not None and again.generation == 2
    run_steps(store, world.settings, job_id, _read_all)
    assert {row.package_ref for row in store.bulk.rows(job_id)} == first
    rows = people(8)
    rows.insert(0, rows.pop(4))
    upload_job(store, job_id, job_spec(), csv_bytes(rows))
    jobs.start_from_blob(store, world.settings, job_blob(store, job_id))
    job = run_steps(store, world.settings, job_id, _read_all)
    refs = [row.package_ref for row in store.bulk.rows(job_id)]
    assert len(refs) == len(set(refs)) == 8 and first < set(refs)
    assert not any(row.skipped for row in store.bulk.rows(job_id) if row.generation == job.generation)
    # Repeating the trigger of one upload changes nothing.
    assert jobs.start_from_blob(store, world.settings, job_blob(store, job_id)).generation == job.generation


def test_a_job_without_a_good_row_is_input_rejected_with_a_report(world: World) -> None:
    store, job_id = world.store, new_job_id()
    rows = people(3)
    for row in rows:
        row[0] = "nobody"
    upload_job(store, job_id, job_spec(), csv_bytes(rows))
    jobs.start_from_blob(store, world.settings, job_blob(store, job_id))
    job = run_steps(store, world.settings, job_id, lambda j: j.state.is_final)
    assert job.state is JobState.INPUT_REJECTED and job.error_report
    report = json.loads(store.clients.container(names.ERRORS_CONTAINER)
                        .download_blob(job.error_report.split("/", 1)[1]).readall())
    assert report["reason"]["code"] == "no_good_row" and len(report["details"]) == 3
    assert summary(store, job_id)["final"] is True


@pytest.mark.parametrize(("spec", "recipients", "code"), [
    (job_spec(name="Policy {Team}"), csv_bytes(people(1)), "template_field_missing"),
    (job_spec(), csv_bytes(people(1), header=["mail-less", "FirstName"]), "email_column_missing"),
    (job_spec(), None, "recipients_missing"),
    (job_spec(documents=[{"path": "missing.pdf"}]), csv_bytes(people(1)), "document_missing"),
    (job_spec(unknown=1), csv_bytes(people(1)), "schema_invalid"),
])
def test_a_bad_job_is_input_rejected_at_once(world: World, spec: dict[str, object], recipients: bytes | None,
                                             code: str) -> None:
    store, job_id = world.store, new_job_id()
    upload_job(store, job_id, spec, recipients)
    job = jobs.start_from_blob(store, world.settings, job_blob(store, job_id))
    assert job is not None and job.state is JobState.INPUT_REJECTED
    report = json.loads(store.clients.container(names.ERRORS_CONTAINER)
                        .download_blob((job.error_report or "").split("/", 1)[1]).readall())
    assert report["reason"]["code"] == code


def test_json_recipients_and_the_pacing_cap(world: World) -> None:
    store, job_id = world.store, new_job_id()
    settings = World(base_env(world.env["DocumentStorage"], CONNECTIVE_RATE_CALLS="5",
                              BULK_RATE_SHARE="0.6", BULK_REPORT_INTERVAL_S="0")).settings
    recipients = [{"email": f"j{n}@example.com", "firstName": "J", "lastName": str(n), "id": f"emp-{n}"}
                  for n in range(6)]
    upload_job(store, job_id, job_spec(recipients="recipients.json"), json.dumps(recipients).encode())
    job = jobs.start_from_blob(store, settings, job_blob(store, job_id))
    assert job is not None
    feeder.run_step(store, settings, job_id, job.step, lambda: None)  # type: ignore[arg-type,return-value]
    # 60 % of 5 calls: 3 creations per window, so 3 rows are released and the rest wait for them.
    assert len(list(store.bulk.rows(job_id))) == 3
    job = store.bulk.get(job_id)
    assert job is not None and not job.read_done
    feeder.run_step(store, settings, job_id, job.step, lambda: None)  # type: ignore[arg-type,return-value]
    assert len(list(store.bulk.rows(job_id))) == 3
    assert world.row(package_ref_for_row(job_id, "emp-0")).spec["request"]["signers"][0]["externalReference"] \
        == "emp-0"


def test_cancel_revokes_rows_not_yet_created(world: World) -> None:
    store, job_id = world.store, new_job_id()
    upload_job(store, job_id, job_spec(), csv_bytes(people(4)))
    jobs.start_from_blob(store, world.settings, job_blob(store, job_id))
    run_steps(store, world.settings, job_id, _read_all)
    cancelled = feeder.cancel(store, job_id)
    assert cancelled is not None and cancelled.state is JobState.CANCELLING
    job = run_steps(store, world.settings, job_id, lambda j: j.state.is_final)
    assert job.state is JobState.CANCELLED
    assert {row["status"] for row in report_rows(store, job_id)} == {"Revoked"}
    assert summary(store, job_id)["final"] is True


def test_a_stale_step_does_nothing(world: World) -> None:
    store, job_id = world.store, new_job_id()
    upload(store, job_id, "x.txt", b"x")
    upload_job(store, job_id, job_spec(), csv_bytes(people(2)))
    job = jobs.start_from_blob(store, world.settings, job_blob(store, job_id))
    assert job is not None
    feeder.run_step(store, world.settings, job_id, job.step, lambda: None)  # type: ignore[arg-type,return-value]
    before = store.bulk.get(job_id)
    feeder.run_step(store, world.settings, job_id, job.step, lambda: None)  # type: ignore[arg-type,return-value]
    assert store.bulk.get(job_id).step == before.step  # type: ignore[union-attr]


def test_committed_job_schema_is_generated_from_the_model() -> None:
    from pathlib import Path

    from shared.bulk.spec import json_schema

    committed = json.loads((Path(__file__).parents[2] / "shared" / "bulk" / "job.schema.json").read_text())
    assert committed == json_schema(), "run: python -m shared.bulk.spec > shared/bulk/job.schema.json"


def test_the_sample_job_starts(world: World) -> None:
    from pathlib import Path

    sample = Path(__file__).parents[2] / "samples" / "bulk" / "policy-2027"
    store, job_id = world.store, new_job_id()
    for name in ("policy.pdf", "recipients.csv", "job.json"):
        upload(store, job_id, name, (sample / name).read_bytes())
    job = jobs.start_from_blob(store, world.settings, job_blob(store, job_id))
    assert job is not None and job.state is JobState.SENDING
    run_steps(store, world.settings, job_id, _read_all)
    statuses = [row["status"] for row in report_rows(store, job_id)]
    assert statuses.count("Received") == 6 and statuses.count("Skipped") == 3


def test_a_last_name_of_several_words_reaches_connective_whole(world: World) -> None:
    from shared.bulk.spec import BulkJobSpec, package_request

    request = package_request("job", BulkJobSpec.model_validate(job_spec()),
                              {"email": "jan@example.com", "firstname": "Jan", "lastname": "Van Damme"})
    assert request.signers[0].name == "Jan Van Damme"
    assert request.signers[0].first_and_last_name == ("Jan", "Van Damme")


def test_rows_past_the_limit_and_after_a_broken_quote_are_reported(storage_connection_string: str) -> None:
    world = World(base_env(storage_connection_string, BULK_REPORT_INTERVAL_S="0", BULK_MAX_ROWS="3",
                           CONNECTIVE_RATE_CALLS="1000"))
    store, job_id = world.store, new_job_id()
    upload_job(store, job_id, job_spec(), csv_bytes(people(5)))
    jobs.start_from_blob(store, world.settings, job_blob(store, job_id))
    run_steps(store, world.settings, job_id, _read_all)
    report = report_rows(store, job_id)
    assert [row["status"] for row in report].count("Received") == 3
    assert [row["reason"].split(":")[0] for row in report if row["status"] == "Skipped"] == ["too_many_rows"]

    broken_id = new_job_id()
    data = csv_bytes(people(2)) + b'late@example.com,"Open,Quote,en,Sales\r\n'
    upload_job(store, broken_id, job_spec(), data)
    jobs.start_from_blob(store, world.settings, job_blob(store, broken_id))
    run_steps(store, world.settings, broken_id, _read_all)
    report = report_rows(store, broken_id)
    assert [row["status"] for row in report].count("Received") == 2
    assert [row["reason"].split(":")[0] for row in report if row["status"] == "Skipped"] == ["quote_not_closed"]
