"""batch/v1 declarations, Job/CronJob defaulting and validation."""

from __future__ import annotations

import copy
from typing import Any

from kubeha.api import registry
from kubeha.api.schema import STRUCTS

registry.load_all()

from kubeha.api.batch import v1 as batch  # noqa: E402

P = "io.k8s.api.batch.v1."


def job(**spec: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "pi", "namespace": "default", "uid": "u-1"},
        "spec": {
            "template": {"spec": {"containers": [{"name": "pi", "image": "perl"}], "restartPolicy": "Never"}},
        },
    }
    obj["spec"].update(spec)
    return obj


def cronjob(**spec: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "metadata": {"name": "hello", "namespace": "default"},
        "spec": {"schedule": "*/1 * * * *", "jobTemplate": {"spec": job()["spec"]}},
    }
    obj["spec"].update(spec)
    return obj


def fields(causes: list[Any]) -> list[str]:
    return [c.field for c in causes]


def test_registered_with_status() -> None:
    jobs = registry.lookup("batch", "v1", "jobs")
    cjs = registry.lookup("batch", "v1", "cronjobs")
    assert jobs is not None and cjs is not None
    assert jobs.subresource("status") is not None and cjs.subresource("status") is not None
    assert cjs.short_names == ("cj",)
    assert jobs.strategy.has_status


def test_protobuf_numbers() -> None:
    spec = STRUCTS[P + "JobSpec"].by_json
    assert (spec["parallelism"].number, spec["completions"].number, spec["backoffLimit"].number) == (1, 2, 7)
    assert (spec["completionMode"].number, spec["suspend"].number, spec["podReplacementPolicy"].number) == (9, 10, 14)
    st = STRUCTS[P + "JobStatus"].by_json
    assert (st["uncountedTerminatedPods"].number, st["ready"].number, st["terminating"].number) == (8, 9, 11)
    assert STRUCTS[P + "CronJobSpec"].by_json["timeZone"].number == 8
    assert STRUCTS[P + "CronJobStatus"].by_json["lastSuccessfulTime"].number == 5


def test_job_defaults_and_generated_selector() -> None:
    obj = job()
    batch.JOBS.strategy.default(obj)
    assert batch.JOBS.strategy.validate(obj) == []
    spec = obj["spec"]
    assert (spec["completions"], spec["parallelism"], spec["backoffLimit"]) == (1, 1, 6)
    assert spec["completionMode"] == "NonIndexed" and spec["suspend"] is False
    assert spec["podReplacementPolicy"] == "TerminatingOrFailed"
    assert spec["selector"] == {"matchLabels": {batch.CONTROLLER_UID_LABEL: "u-1"}}
    labels = spec["template"]["metadata"]["labels"]
    assert labels[batch.CONTROLLER_UID_LABEL] == "u-1" and labels[batch.JOB_NAME_LABEL] == "pi"


def test_parallelism_only_leaves_completions_unset() -> None:
    obj = job(parallelism=3)
    batch.JOBS.strategy.default(obj)
    assert obj["spec"].get("completions") is None and obj["spec"]["parallelism"] == 3


def test_manual_selector_must_match() -> None:
    obj = job(manualSelector=True, selector={"matchLabels": {"a": "b"}})
    batch.JOBS.strategy.default(obj)
    assert "spec.template.metadata.labels" in fields(batch.JOBS.strategy.validate(obj))


def test_restart_policy_and_indexed_rules() -> None:
    obj = job()
    obj["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    batch.JOBS.strategy.default(obj)
    assert "spec.template.spec.restartPolicy" in fields(batch.JOBS.strategy.validate(obj))
    obj = job(completionMode="Indexed", parallelism=2)
    assert "spec.completions" in fields(batch.JOBS.strategy.validate(obj))
    obj = job(activeDeadlineSeconds=0)
    batch.JOBS.strategy.default(obj)
    assert "spec.activeDeadlineSeconds" in fields(batch.JOBS.strategy.validate(obj))


def test_job_update_immutables() -> None:
    old = job()
    batch.JOBS.strategy.default(old)
    batch.JOBS.strategy.validate(old)
    new = copy.deepcopy(old)
    new["spec"]["completions"] = 5
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "other"
    got = fields(batch.JOBS.strategy.validate_update(new, old))
    assert "spec.completions" in got and "spec.template" in got
    ok = copy.deepcopy(old)
    ok["spec"]["parallelism"] = 4
    ok["spec"]["suspend"] = True
    assert batch.JOBS.strategy.validate_update(ok, old) == []


def test_cronjob_defaults_and_validation() -> None:
    obj = cronjob()
    batch.CRONJOBS.strategy.default(obj)
    spec = obj["spec"]
    assert (spec["concurrencyPolicy"], spec["suspend"]) == ("Allow", False)
    assert (spec["successfulJobsHistoryLimit"], spec["failedJobsHistoryLimit"]) == (3, 1)
    assert batch.CRONJOBS.strategy.validate(obj) == []
    bad = cronjob(schedule="61 * * * *", timeZone="Mars/Olympus", concurrencyPolicy="Sometimes")
    got = fields(batch.CRONJOBS.strategy.validate(bad))
    assert {"spec.schedule", "spec.timeZone", "spec.concurrencyPolicy"} <= set(got)
    tz = cronjob(schedule="TZ=UTC 0 * * * *")
    assert "spec.schedule" in fields(batch.CRONJOBS.strategy.validate(tz))
    berlin = cronjob(timeZone="Europe/Berlin")
    batch.CRONJOBS.strategy.default(berlin)
    assert batch.CRONJOBS.strategy.validate(berlin) == []


def test_is_finished() -> None:
    obj = job()
    assert batch.is_finished(obj) == (False, "")
    obj["status"] = {"conditions": [{"type": "Failed", "status": "True"}]}
    assert batch.is_finished(obj) == (True, "Failed")


# -- job controller status math -------------------------------------------------------------------

from kubeha.controllers import job as jc  # noqa: E402


def test_want_active() -> None:
    assert jc.want_active({"parallelism": 3, "completions": 5}, 0, 0) == 3
    assert jc.want_active({"parallelism": 3, "completions": 5}, 4, 0) == 1
    assert jc.want_active({"parallelism": 3, "completions": 5}, 5, 0) == 0
    # work queue style (no completions): none once any succeeded
    assert jc.want_active({"parallelism": 2}, 0, 0) == 2
    assert jc.want_active({"parallelism": 2}, 1, 0) == 0
    assert jc.want_active({"parallelism": 4, "completions": 6, "completionMode": "Indexed"}, 0, 3) == 3


def test_success_reached() -> None:
    assert jc.success_reached({"completions": 2}, 2, 0, 1)
    assert not jc.success_reached({"completions": 2}, 1, 0, 0)
    assert jc.success_reached({}, 1, 0, 0) and not jc.success_reached({}, 1, 0, 1)
    assert jc.success_reached({"completions": 3, "completionMode": "Indexed"}, 9, 3, 0)


def test_backoff_and_index_formats() -> None:
    assert [jc.backoff_delay(n) for n in range(4)] == [0.0, 10.0, 20.0, 40.0]
    assert jc.backoff_delay(20) == jc.BACKOFF_MAX
    assert jc.format_indexes({1, 3, 4, 5, 7}) == "1,3-5,7"
    assert jc.format_indexes({0, 1}) == "0,1"
    assert jc.parse_indexes("1,3-5,7") == {1, 3, 4, 5, 7}
    assert jc.parse_indexes("1,3-5,7", limit=4) == {1, 3}


def test_pod_finished_and_conditions() -> None:
    assert jc.pod_finished({"status": {"phase": "Succeeded"}}) == "Succeeded"
    assert jc.pod_finished({"status": {"phase": "Running"}}) is None
    assert jc.pod_finished({"metadata": {"deletionTimestamp": "x"}, "status": {"phase": "Running"}}) == "Failed"
    status: dict[str, Any] = {}
    assert jc.set_condition(status, "Complete", "True", "CompletionsReached", "m", "T1")
    assert not jc.set_condition(status, "Complete", "True", "CompletionsReached", "m", "T2")
    assert jc.has_condition(status, "Complete") is not None
    assert status["conditions"][0]["lastTransitionTime"] == "T1"


def test_indexed_pod_template() -> None:
    obj = job(completionMode="Indexed", completions=3)
    batch.JOBS.strategy.default(obj)
    batch.JOBS.strategy.validate(obj)
    tmpl = jc.JobController.pod_template(None, obj, 2)  # type: ignore[arg-type]
    md = tmpl["metadata"]
    assert md["annotations"][batch.JOB_COMPLETION_INDEX] == "2" and md["labels"][batch.JOB_COMPLETION_INDEX] == "2"
    assert batch.JOB_TRACKING_FINALIZER in md["finalizers"]
    assert tmpl["spec"]["hostname"] == "pi-2"
    assert tmpl["spec"]["containers"][0]["env"][0]["name"] == "JOB_COMPLETION_INDEX"
