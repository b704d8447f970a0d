"""batch/v1: Job and CronJob.

Field numbers are upstream's (k8s.io/api/batch/v1/generated.proto). Defaulting follows upstream's
batch/v1 defaults; validation keeps the checks clients trip over (restart policy, selector and
template labels, completion mode, immutable fields, cron schedule and time zone).
"""

from __future__ import annotations

import zoneinfo
from typing import Any

import kubeha.api.core.v1  # noqa: F401  (PodTemplateSpec, ObjectReference)
from kubeha.api import registry
from kubeha.api.apps.v1 import selector_matches, validate_label_selector
from kubeha.api.batch.cron import CronError, parse
from kubeha.api.core.pod import default_pod_spec, validate_pod_spec
from kubeha.api.errors import Cause, forbidden_field, invalid_value, not_supported, required
from kubeha.api.registry import ResourceInfo, Strategy, SubresourceInfo
from kubeha.api.schema import (
    BOOL,
    CORE,
    INT32,
    INT64,
    META,
    STRING,
    TIME,
    Obj,
    f,
    list_of,
    list_struct,
    object_meta_field,
    struct,
    type_meta_fields,
)
from kubeha.api.validation import validate_immutable, validate_labels, validate_nonnegative

GROUP = "batch"
VERSION = "v1"
P = "io.k8s.api.batch.v1."

# labels and annotations the Job machinery puts on pods (upstream names)
CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
LEGACY_CONTROLLER_UID_LABEL = "controller-uid"
LEGACY_JOB_NAME_LABEL = "job-name"
JOB_COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
JOB_TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
CRONJOB_SCHEDULED_TIMESTAMP = "batch.kubernetes.io/cronjob-scheduled-timestamp"

NON_INDEXED, INDEXED = "NonIndexed", "Indexed"
MAX_PARALLELISM_INDEXED = 100_000


_meta = object_meta_field


def _list_struct(kind: str, doc: str) -> None:
    list_struct(P, (GROUP, VERSION, kind), doc, f"The {kind}s.")


# -- Job ------------------------------------------------------------------------------------------

struct(
    P + "PodFailurePolicyOnExitCodesRequirement",
    "Matches failed pods by container exit codes.",
    f("containerName", 1, STRING, "Only this container's exit code counts (all when unset).", pointer=True),
    f("operator", 2, STRING, "In or NotIn.", required=True, enum=("In", "NotIn")),
    f("values", 3, list_of(INT32), "Exit codes to compare with.", list_type="set"),
)
struct(
    P + "PodFailurePolicyOnPodConditionsPattern",
    "Matches failed pods by a pod condition.",
    f("type", 1, STRING, "Pod condition type.", required=True),
    f("status", 2, STRING, "Pod condition status.", default="True"),
)
struct(
    P + "PodFailurePolicyRule",
    "An action for pod failures that meet its requirements.",
    f("action", 1, STRING, "FailJob, FailIndex, Ignore or Count.", required=True),
    f("onExitCodes", 2, P + "PodFailurePolicyOnExitCodesRequirement", "Requirement on exit codes."),
    f(
        "onPodConditions",
        3,
        list_of(P + "PodFailurePolicyOnPodConditionsPattern"),
        "Requirement on pod conditions.",
        list_type="atomic",
    ),
)
struct(
    P + "PodFailurePolicy",
    "How failed pods count towards the backoff limit.",
    f("rules", 1, list_of(P + "PodFailurePolicyRule"), "Rules, evaluated in order.", list_type="atomic"),
)
struct(
    P + "SuccessPolicyRule",
    "A rule declaring an Indexed Job succeeded early.",
    f("succeededIndexes", 1, STRING, "Indexes that must have succeeded (e.g. 1,3-5).", pointer=True),
    f("succeededCount", 2, INT32, "How many of those indexes must have succeeded.", pointer=True),
)
struct(
    P + "SuccessPolicy",
    "When a Job may be declared succeeded before all completions.",
    f("rules", 1, list_of(P + "SuccessPolicyRule"), "Alternative rules.", list_type="atomic"),
)
struct(
    P + "JobSpec",
    "Desired behaviour of a Job.",
    f("parallelism", 1, INT32, "Pods running at once, at most.", default=1, pointer=True),
    f("completions", 2, INT32, "Successful pods needed.", pointer=True),
    f("activeDeadlineSeconds", 3, INT64, "Seconds the Job may be active before it is failed.", pointer=True),
    f("podFailurePolicy", 11, P + "PodFailurePolicy", "How pod failures count."),
    f("successPolicy", 16, P + "SuccessPolicy", "When an Indexed Job may succeed early."),
    f("backoffLimit", 7, INT32, "Retries before the Job is failed.", default=6, pointer=True),
    f("backoffLimitPerIndex", 12, INT32, "Retries per index (Indexed Jobs).", pointer=True),
    f("maxFailedIndexes", 13, INT32, "Failed indexes before the Job fails.", pointer=True),
    f("selector", 4, META + "LabelSelector", "Label query over pods (normally generated)."),
    f("manualSelector", 5, BOOL, "The user picks the selector and pod labels.", pointer=True),
    f("template", 6, CORE + "PodTemplateSpec", "Pods created for this Job.", required=True),
    f("ttlSecondsAfterFinished", 8, INT32, "Seconds after finishing before the Job is deleted.", pointer=True),
    f(
        "completionMode",
        9,
        STRING,
        "NonIndexed or Indexed.",
        default=NON_INDEXED,
        pointer=True,
        enum=(NON_INDEXED, INDEXED),
    ),
    f("suspend", 10, BOOL, "Whether the controller should stop running pods.", default=False, pointer=True),
    f(
        "podReplacementPolicy",
        14,
        STRING,
        "When to replace pods: TerminatingOrFailed or Failed.",
        pointer=True,
        enum=("TerminatingOrFailed", "Failed"),
    ),
    f("managedBy", 15, STRING, "Controller that manages the Job.", pointer=True, immutable=True),
)
struct(
    P + "JobCondition",
    "One aspect of a Job's state.",
    f("type", 1, STRING, "Complete, Failed, Suspended, FailureTarget or SuccessCriteriaMet.", required=True),
    f("status", 2, STRING, "True, False or Unknown.", required=True),
    f("lastProbeTime", 3, TIME, "Last time the condition was checked."),
    f("lastTransitionTime", 4, TIME, "Last time the condition changed status."),
    f("reason", 5, STRING, "Machine-readable reason for the last transition."),
    f("message", 6, STRING, "Human-readable details."),
)
struct(
    P + "UncountedTerminatedPods",
    "Finished pods not yet counted in the Job's status.",
    f("succeeded", 1, list_of(STRING), "UIDs of succeeded pods.", list_type="set"),
    f("failed", 2, list_of(STRING), "UIDs of failed pods.", list_type="set"),
)
struct(
    P + "JobStatus",
    "Observed state of a Job.",
    f(
        "conditions",
        1,
        list_of(P + "JobCondition"),
        "Latest observations of the Job's state.",
        strategy="merge",
        merge_key="type",
        list_type="atomic",
    ),
    f("startTime", 2, TIME, "When the controller started processing the Job."),
    f("completionTime", 3, TIME, "When the Job completed."),
    f("active", 4, INT32, "Pending and running pods that are not terminating."),
    f("succeeded", 5, INT32, "Pods that reached phase Succeeded."),
    f("failed", 6, INT32, "Pods that reached phase Failed."),
    f("terminating", 11, INT32, "Terminating pods.", pointer=True),
    f("completedIndexes", 7, STRING, "Completed indexes of an Indexed Job (e.g. 1,3-5,7)."),
    f("failedIndexes", 10, STRING, "Failed indexes with backoffLimitPerIndex.", pointer=True),
    f("uncountedTerminatedPods", 8, P + "UncountedTerminatedPods", "Finished pods not yet counted."),
    f("ready", 9, INT32, "Active pods with a Ready condition.", pointer=True),
)
struct(
    P + "Job",
    "A run-to-completion workload.",
    *type_meta_fields(),
    _meta(),
    f("spec", 2, P + "JobSpec", "Desired behaviour of the Job."),
    f("status", 3, P + "JobStatus", "Current status of the Job."),
    gvk=(GROUP, VERSION, "Job"),
)
_list_struct("Job", "A list of Jobs.")

# -- CronJob --------------------------------------------------------------------------------------

struct(
    P + "JobTemplateSpec",
    "The Job a CronJob creates.",
    _meta(),
    f("spec", 2, P + "JobSpec", "Desired behaviour of the Job."),
)
struct(
    P + "CronJobSpec",
    "Desired behaviour of a CronJob.",
    f("schedule", 1, STRING, "Cron schedule.", required=True),
    f("timeZone", 8, STRING, "Time zone of the schedule (tz database name).", pointer=True),
    f("startingDeadlineSeconds", 2, INT64, "Seconds after a missed time a Job may still start.", pointer=True),
    f(
        "concurrencyPolicy",
        3,
        STRING,
        "Allow, Forbid or Replace.",
        default="Allow",
        enum=("Allow", "Forbid", "Replace"),
    ),
    f("suspend", 4, BOOL, "Stop scheduling new Jobs.", default=False, pointer=True),
    f("jobTemplate", 5, P + "JobTemplateSpec", "The Job to create.", required=True),
    f("successfulJobsHistoryLimit", 6, INT32, "Finished successful Jobs to keep.", default=3, pointer=True),
    f("failedJobsHistoryLimit", 7, INT32, "Failed Jobs to keep.", default=1, pointer=True),
)
struct(
    P + "CronJobStatus",
    "Observed state of a CronJob.",
    f("active", 1, list_of(CORE + "ObjectReference"), "Running Jobs.", list_type="atomic"),
    f("lastScheduleTime", 4, TIME, "Last time a Job was scheduled."),
    f("lastSuccessfulTime", 5, TIME, "Last time a Job completed successfully."),
)
struct(
    P + "CronJob",
    "Runs Jobs on a schedule.",
    *type_meta_fields(),
    _meta(),
    f("spec", 2, P + "CronJobSpec", "Desired behaviour, including the schedule."),
    f("status", 3, P + "CronJobStatus", "Current status."),
    gvk=(GROUP, VERSION, "CronJob"),
)
_list_struct("CronJob", "A list of CronJobs.")


# -- defaulting -----------------------------------------------------------------------------------


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def default_job_spec(spec: Obj) -> None:
    """Upstream's batch/v1 Job defaults (in place)."""
    completions, parallelism = spec.get("completions"), spec.get("parallelism")
    if completions is None and parallelism is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    elif parallelism is None:
        spec["parallelism"] = 1
    spec.setdefault("completionMode", NON_INDEXED)
    if spec.get("backoffLimit") is None:
        # with a per-index limit the global one is effectively unlimited, as upstream
        spec["backoffLimit"] = 2147483647 if spec.get("backoffLimitPerIndex") is not None else 6
    if spec.get("suspend") is None:
        spec["suspend"] = False
    if spec.get("podReplacementPolicy") is None:
        spec["podReplacementPolicy"] = "Failed" if spec.get("podFailurePolicy") else "TerminatingOrFailed"
    if spec.get("manualSelector") is None:
        spec.pop("manualSelector", None)
    template = spec.get("template")
    if isinstance(template, dict):
        default_pod_spec(template.setdefault("spec", {}))
    for rule in (spec.get("podFailurePolicy") or {}).get("rules") or []:
        for pat in rule.get("onPodConditions") or []:
            pat.setdefault("status", "True")


def generate_selector(job: Obj) -> None:
    """Give a Job without ``manualSelector`` its controller-uid selector and pod labels (upstream
    generates them once the uid is known)."""
    spec = job.setdefault("spec", {})
    if spec.get("manualSelector"):
        return
    md = job.get("metadata") or {}
    uid, name = str(md.get("uid") or ""), str(md.get("name") or "")
    if not uid:
        return
    template = spec.setdefault("template", {})
    labels = template.setdefault("metadata", {}).setdefault("labels", {})
    labels.setdefault(CONTROLLER_UID_LABEL, uid)
    labels.setdefault(JOB_NAME_LABEL, name)
    labels.setdefault(LEGACY_CONTROLLER_UID_LABEL, uid)
    labels.setdefault(LEGACY_JOB_NAME_LABEL, name)
    if not spec.get("selector"):
        spec["selector"] = {"matchLabels": {CONTROLLER_UID_LABEL: uid}}


# -- validation -----------------------------------------------------------------------------------


def _nonneg(spec: Obj, key: str, path: str) -> list[Cause]:
    v = spec.get(key)
    return [] if v is None else list(validate_nonnegative(v, f"{path}.{key}"))


def validate_job_spec(spec: Obj, path: str, *, check_selector: bool = True) -> list[Cause]:
    causes: list[Cause] = []
    for key in ("parallelism", "completions", "backoffLimit", "ttlSecondsAfterFinished"):
        causes += _nonneg(spec, key, path)
    ads = spec.get("activeDeadlineSeconds")
    if ads is not None and (not _is_int(ads) or ads <= 0):
        causes.append(invalid_value(f"{path}.activeDeadlineSeconds", ads, "must be greater than 0"))
    mode = spec.get("completionMode", NON_INDEXED)
    if mode not in (NON_INDEXED, INDEXED):
        causes.append(not_supported(f"{path}.completionMode", mode, [NON_INDEXED, INDEXED]))
    if mode == INDEXED:
        if spec.get("completions") is None:
            causes.append(required(f"{path}.completions", "when completion mode is Indexed"))
        par = spec.get("parallelism")
        if isinstance(par, int) and par > MAX_PARALLELISM_INDEXED:
            causes.append(invalid_value(f"{path}.parallelism", par, "must be less than or equal to 100000"))
    elif spec.get("backoffLimitPerIndex") is not None:
        causes.append(forbidden_field(f"{path}.backoffLimitPerIndex", "requires indexed completion mode"))
    prp = spec.get("podReplacementPolicy")
    if prp is not None and prp not in ("TerminatingOrFailed", "Failed"):
        causes.append(not_supported(f"{path}.podReplacementPolicy", prp, ["Failed", "TerminatingOrFailed"]))
    sel = spec.get("selector")
    template = spec.get("template")
    if check_selector:
        if sel is None:
            causes.append(required(f"{path}.selector"))
        else:
            causes += validate_label_selector(sel, f"{path}.selector")
            if not sel.get("matchLabels") and not sel.get("matchExpressions"):
                causes.append(invalid_value(f"{path}.selector", sel, "empty selector is invalid for job"))
    if not isinstance(template, dict):
        causes.append(required(f"{path}.template"))
        return causes
    labels = (template.get("metadata") or {}).get("labels") or {}
    causes += validate_labels(labels, f"{path}.template.metadata.labels")
    if check_selector and sel and not selector_matches(sel, labels):
        causes.append(
            invalid_value(f"{path}.template.metadata.labels", labels, "`selector` does not match template `labels`")
        )
    pod_spec = template.get("spec") or {}
    causes += validate_pod_spec(pod_spec, f"{path}.template.spec")
    restart = pod_spec.get("restartPolicy")
    if restart not in ("OnFailure", "Never"):
        causes.append(not_supported(f"{path}.template.spec.restartPolicy", restart or "", ["OnFailure", "Never"]))
    if spec.get("podFailurePolicy") and restart == "OnFailure":
        causes.append(
            invalid_value(f"{path}.podFailurePolicy", None, "only allowed when template.spec.restartPolicy is Never")
        )
    return causes


class JobStrategy(Strategy):
    has_status = True
    track_generation = True

    def default(self, obj: Obj) -> None:
        default_job_spec(obj.setdefault("spec", {}))

    def validate(self, obj: Obj) -> list[Cause]:
        # the uid exists only now (after prepare_for_create), so the selector is generated here,
        # as upstream does in its Job strategy's Validate
        generate_selector(obj)
        return validate_job_spec(obj.get("spec") or {}, "spec")

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        spec, ospec = new.get("spec") or {}, old.get("spec") or {}
        causes = validate_job_spec(spec, "spec")
        for key in ("selector", "completionMode", "manualSelector", "podFailurePolicy", "successPolicy"):
            causes += validate_immutable(spec.get(key), ospec.get(key), f"spec.{key}")
        # completions may change only for elastic Indexed Jobs (together with parallelism)
        if spec.get("completions") != ospec.get("completions") and not (
            spec.get("completionMode") == INDEXED and spec.get("completions") == spec.get("parallelism")
        ):
            causes += validate_immutable(spec.get("completions"), ospec.get("completions"), "spec.completions")
        # the template may change only while the Job is suspended (upstream allows scheduling
        # directives then); otherwise it is fixed
        if not (ospec.get("suspend") and (old.get("status") or {}).get("startTime") is None):
            causes += validate_immutable(spec.get("template"), ospec.get("template"), "spec.template")
        return causes

    def validate_status_update(self, new: Obj, old: Obj) -> list[Cause]:
        status = new.get("status") or {}
        causes: list[Cause] = []
        for key in ("active", "succeeded", "failed", "ready", "terminating"):
            if status.get(key) is not None:
                causes += validate_nonnegative(status[key], f"status.{key}")
        types = {c.get("type") for c in status.get("conditions") or [] if c.get("status") == "True"}
        if "Complete" in types and "Failed" in types:
            causes.append(
                invalid_value("status.conditions", None, "cannot set Complete=True and Failed=true conditions")
            )
        return causes


def validate_time_zone(tz: Any, path: str) -> list[Cause]:
    if tz is None:
        return []
    if not isinstance(tz, str) or not tz or tz.startswith(("/", ".")) or " " in tz:
        return [invalid_value(path, tz, "unknown time zone " + str(tz))]
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return [invalid_value(path, tz, "unknown time zone " + tz)]
    return []


def validate_schedule(schedule: Any, path: str, has_time_zone: bool) -> list[Cause]:
    if not schedule:
        return [required(path)]
    if not isinstance(schedule, str):
        return [invalid_value(path, schedule, "must be a string")]
    if "TZ=" in schedule:
        if has_time_zone:
            return [invalid_value(path, schedule, "cannot use both timeZone field and TZ or CRON_TZ in schedule")]
        return [invalid_value(path, schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead")]
    try:
        parse(schedule)
    except CronError as e:
        return [invalid_value(path, schedule, str(e))]
    return []


class CronJobStrategy(Strategy):
    has_status = True
    track_generation = True

    def default(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        spec.setdefault("concurrencyPolicy", "Allow")
        if spec.get("suspend") is None:
            spec["suspend"] = False
        if spec.get("successfulJobsHistoryLimit") is None:
            spec["successfulJobsHistoryLimit"] = 3
        if spec.get("failedJobsHistoryLimit") is None:
            spec["failedJobsHistoryLimit"] = 1
        jt = spec.get("jobTemplate")
        if isinstance(jt, dict):
            default_job_spec(jt.setdefault("spec", {}))

    def validate(self, obj: Obj) -> list[Cause]:
        spec = obj.get("spec") or {}
        causes = validate_schedule(spec.get("schedule"), "spec.schedule", spec.get("timeZone") is not None)
        causes += validate_time_zone(spec.get("timeZone"), "spec.timeZone")
        cp = spec.get("concurrencyPolicy", "Allow")
        if cp not in ("Allow", "Forbid", "Replace"):
            causes.append(not_supported("spec.concurrencyPolicy", cp, ["Allow", "Forbid", "Replace"]))
        for key in ("startingDeadlineSeconds", "successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
            causes += _nonneg(spec, key, "spec")
        jt = spec.get("jobTemplate")
        if not isinstance(jt, dict):
            causes.append(required("spec.jobTemplate"))
        else:
            # jobs made from the template get their own generated selector
            causes += validate_job_spec(jt.get("spec") or {}, "spec.jobTemplate.spec", check_selector=False)
        name = str((obj.get("metadata") or {}).get("name") or "")
        if len(name) > 52:
            causes.append(invalid_value("metadata.name", name, "must be no more than 52 characters"))
        return causes

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        causes = self.validate(new)
        return [c for c in causes if c.field != "metadata.name"]


# -- registrations --------------------------------------------------------------------------------

JOBS = registry.register(
    ResourceInfo(
        GROUP,
        VERSION,
        "jobs",
        "Job",
        True,
        P + "Job",
        strategy=JobStrategy(),
        categories=("all",),
        subresources=(SubresourceInfo("status", "Job"),),
    )
)
CRONJOBS = registry.register(
    ResourceInfo(
        GROUP,
        VERSION,
        "cronjobs",
        "CronJob",
        True,
        P + "CronJob",
        strategy=CronJobStrategy(),
        short_names=("cj",),
        categories=("all",),
        subresources=(SubresourceInfo("status", "CronJob"),),
    )
)


def is_finished(job: Obj) -> tuple[bool, str]:
    """Whether a Job has a Complete or Failed condition that is True, and which."""
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return True, str(c["type"])
    return False, ""
