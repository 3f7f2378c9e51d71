"""RFC 9457 problem details with a stable machine-readable `code` for every error the API returns.

`ErrorCode` is the one vocabulary of codes; `ERRORS` says, for each, the HTTP status it is answered with and what a
client should make of it. An `AppError` refuses a code that is not registered, and the OpenAPI document
(`backend/openapi.py`) lists the codes from here, so the registry, the responses and the documentation cannot drift.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import quote

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR, HTTP_503_SERVICE_UNAVAILABLE

from backend.faults import DATABASE, DependencyUnavailable, database_unreachable

logger = logging.getLogger("backend")

PROBLEM_MEDIA_TYPE = "application/problem+json"


class ErrorCode(StrEnum):
    """Every `code` a problem body may carry. Members compare equal to their plain-string values."""

    # 400
    BAD_REQUEST = "bad_request"
    VALIDATION_ERROR = "validation_error"
    # 401
    NOT_AUTHENTICATED = "not_authenticated"
    INVALID_CREDENTIALS = "invalid_credentials"
    # 403
    FORBIDDEN = "forbidden"
    ROLE_FORBIDDEN = "role_forbidden"
    NOT_A_HANDLER = "not_a_handler"
    NOT_ON_TEAM = "not_on_team"
    HANDLER_CANNOT_REVIEW = "handler_cannot_review"
    AGENCY_REVIEW_REQUIRED = "agency_review_required"
    HANDLER_CANNOT_APPROVE = "handler_cannot_approve"
    NOT_THE_HOST = "not_the_host"
    # 404 (and 422 for an id inside a body)
    NOT_FOUND = "not_found"
    AGENCY_NOT_FOUND = "agency_not_found"
    ENTERPRISE_NOT_FOUND = "enterprise_not_found"
    CHECKLIST_NOT_FOUND = "checklist_not_found"
    INSPECTION_NOT_FOUND = "inspection_not_found"
    EVIDENCE_NOT_FOUND = "evidence_not_found"
    HAZARD_NOT_FOUND = "hazard_not_found"
    CASE_NOT_FOUND = "case_not_found"
    EVIDENCE_PENDING = "evidence_pending"
    USER_NOT_FOUND = "user_not_found"
    PLAN_NOT_FOUND = "plan_not_found"
    DRAW_NOT_FOUND = "draw_not_found"
    TASK_NOT_FOUND = "task_not_found"
    ACCIDENT_NOT_FOUND = "accident_not_found"
    MEASURE_NOT_FOUND = "measure_not_found"
    WEBHOOK_NOT_FOUND = "webhook_not_found"
    DELIVERY_NOT_FOUND = "delivery_not_found"
    # 405
    METHOD_NOT_ALLOWED = "method_not_allowed"
    # 409
    DOCUMENT_NOT_ISSUED = "document_not_issued"
    CONFLICT = "conflict"
    DUPLICATE_CONFLICT = "duplicate_conflict"
    CONCURRENT_CHANGE = "concurrent_change"
    INVALID_TRANSITION = "invalid_transition"
    NOTICE_RECORDED = "notice_recorded"
    INSPECTION_SUBMITTED = "inspection_submitted"
    NOT_MAJOR = "not_major"
    PLAN_REQUIRED = "plan_required"
    LOOKBACK_NOT_SELECTED = "lookback_not_selected"
    LOOKBACK_NOT_DUE = "lookback_not_due"
    DECISION_REQUIRED = "decision_required"
    LEGAL_REVIEW_REQUIRED = "legal_review_required"
    DECISION_DEADLINE_PASSED = "decision_deadline_passed"
    NOT_DECIDED = "not_decided"
    DOCUMENT_UNAVAILABLE = "document_unavailable"
    CHECKLIST_VERSION_PUBLISHED = "checklist_version_published"
    NO_HEARING_RIGHT = "no_hearing_right"
    HEARING_REQUEST_LATE = "hearing_request_late"
    STATEMENT_UNANSWERED = "statement_unanswered"
    STATEMENT_PERIOD_OPEN = "statement_period_open"
    HEARING_REQUEST_PERIOD_OPEN = "hearing_request_period_open"
    COLLECTIVE_DISCUSSION_REQUIRED = "collective_discussion_required"
    LEADER_APPROVAL_REQUIRED = "leader_approval_required"
    PLAN_APPROVED = "plan_approved"
    PLAN_NOT_APPROVED = "plan_not_approved"
    PLAN_EXISTS = "plan_exists"
    TASK_TAKEN = "task_taken"
    MEASURE_UNEVALUATED = "measure_unevaluated"
    EVIDENCE_MISSING = "evidence_missing"
    # 413
    PAYLOAD_TOO_LARGE = "payload_too_large"
    FILE_TOO_LARGE = "file_too_large"
    # 415 / 422
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    # 422
    INSPECTOR_NOT_ELIGIBLE = "inspector_not_eligible"
    TWO_OFFICERS_REQUIRED = "two_officers_required"
    UNKNOWN_ITEM = "unknown_item"
    RESULTS_INCOMPLETE = "results_incomplete"
    NOTICE_REQUIRED = "notice_required"
    ATTENDEES_INCOMPLETE = "attendees_incomplete"
    EVIDENCE_REQUIRED = "evidence_required"
    UNKNOWN_BASIS = "unknown_basis"
    MEASURE_NOT_ALLOWED = "measure_not_allowed"
    OUTSIDE_DISCRETION = "outside_discretion"
    HEARING_NOTICE_TOO_SHORT = "hearing_notice_too_short"
    HOST_IS_INVESTIGATOR = "host_is_investigator"
    FILE_REQUIRED = "file_required"
    MALFORMED_UPLOAD = "malformed_upload"
    EMPTY_FILE = "empty_file"
    CONTENT_MISMATCH = "content_mismatch"
    IMAGE_TOO_LARGE = "image_too_large"
    CORRUPT_FILE = "corrupt_file"
    UPLOAD_MISSING = "upload_missing"
    UPLOAD_MISMATCH = "upload_mismatch"
    CHECKLIST_INVALID = "checklist_invalid"
    CHECKLIST_NOT_IN_FORCE = "checklist_not_in_force"
    UNKNOWN_SITE_TYPE = "unknown_site_type"
    EMPTY_POPULATION = "empty_population"
    NOT_ENOUGH_INSPECTORS = "not_enough_inspectors"
    TASK_MISMATCH = "task_mismatch"
    WEBHOOK_URL_REFUSED = "webhook_url_refused"
    # 429
    TOO_MANY_REQUESTS = "too_many_requests"
    LOGIN_THROTTLED = "login_throttled"
    # 431
    HEADERS_TOO_LARGE = "headers_too_large"
    # 5xx
    INTERNAL_ERROR = "internal_error"
    SERVICE_UNAVAILABLE = "service_unavailable"


@dataclass(frozen=True)
class ErrorSpec:
    """What a code means: the status it is answered with, a short title, and one sentence a client can act on.

    `also` lists further statuses the same code comes with: a `<thing>_not_found` is 404 for an id in the path and
    422 (naming `field`) for an id inside a body."""

    status: int
    title: str
    meaning: str
    also: tuple[int, ...] = ()

    @property
    def statuses(self) -> tuple[int, ...]:
        return (self.status, *self.also)


def _not_found(thing: str) -> ErrorSpec:
    return ErrorSpec(
        404,
        f"{thing.capitalize()} not found",
        f"The {thing} does not exist or lies outside what the caller may see: 404 for an id in the path, 422 naming "
        f"`field` for an id inside the body; check the id.",
        also=(422,),
    )


E = ErrorCode
ERRORS: dict[ErrorCode, ErrorSpec] = {
    E.BAD_REQUEST: ErrorSpec(
        400, "Bad request", "The request cannot be read as sent (for example a malformed body); fix it before sending again."
    ),
    E.VALIDATION_ERROR: ErrorSpec(
        400,
        "Invalid input",
        "A body, query or path value does not fit the schema (400) or breaks a rule on its value (422); `field` and "
        "`errors` name what to correct.",
        also=(422,),
    ),
    E.NOT_AUTHENTICATED: ErrorSpec(
        401,
        "Not authenticated",
        "The bearer token is missing, invalid or expired, or its account was deactivated; log in again and send "
        "`Authorization: Bearer <token>`.",
    ),
    E.INVALID_CREDENTIALS: ErrorSpec(
        401, "Invalid credentials", "The username or password is wrong; ask the user to enter them again (repeated failures are throttled)."
    ),
    E.FORBIDDEN: ErrorSpec(403, "Forbidden", "The caller is known but may not do this; retrying with the same account will not help."),
    E.ROLE_FORBIDDEN: ErrorSpec(
        403,
        "Role not allowed",
        "The caller's role may not take this action (the detail names the roles that may); use an account with one of them.",
    ),
    E.NOT_A_HANDLER: ErrorSpec(403, "Not a handler of the case", "Only the officers handling the case act on it; ask one of its handlers."),
    E.NOT_ON_TEAM: ErrorSpec(
        403, "Not on the inspection team", "Only the inspectors on the inspection's team record it; ask a team member."
    ),
    E.HANDLER_CANNOT_REVIEW: ErrorSpec(
        403, "Handler cannot review", "A reviewer who handles the case never reviews it; another legal reviewer must review it."
    ),
    E.AGENCY_REVIEW_REQUIRED: ErrorSpec(
        403,
        "Agency review required",
        "An enterprise accepts only its own self-found general hazards; this hazard is reviewed by the supervising agency.",
    ),
    E.HANDLER_CANNOT_APPROVE: ErrorSpec(
        403,
        "Handler cannot approve",
        "A leader never acts on a case they handle (collective discussion, approval, closing); another leader must.",
    ),
    E.NOT_THE_HOST: ErrorSpec(
        403, "Not the hearing's host", "Only the host named when the hearing was scheduled records it (听证笔录); ask the host."
    ),
    E.NOT_FOUND: ErrorSpec(404, "Not found", "Nothing the caller may see exists at this path; check the path and the id."),
    E.AGENCY_NOT_FOUND: _not_found("agency"),
    E.ENTERPRISE_NOT_FOUND: _not_found("enterprise"),
    E.CHECKLIST_NOT_FOUND: ErrorSpec(
        404,
        "Checklist not found",
        "The checklist does not exist or is not published: 404 for an id in the path, 422 naming `field` for an id "
        "inside the body; use a published checklist from GET /checklists.",
        also=(422,),
    ),
    E.INSPECTION_NOT_FOUND: _not_found("inspection"),
    E.EVIDENCE_NOT_FOUND: _not_found("evidence"),
    E.HAZARD_NOT_FOUND: _not_found("hazard"),
    E.CASE_NOT_FOUND: _not_found("case"),
    E.EVIDENCE_PENDING: ErrorSpec(
        404, "Upload not completed", "The evidence's upload has not been completed; call POST /evidence/{id}/complete first, then fetch it."
    ),
    E.USER_NOT_FOUND: _not_found("user"),
    E.PLAN_NOT_FOUND: _not_found("plan"),
    E.DRAW_NOT_FOUND: _not_found("draw"),
    E.TASK_NOT_FOUND: _not_found("task"),
    E.ACCIDENT_NOT_FOUND: _not_found("accident"),
    E.MEASURE_NOT_FOUND: _not_found("measure"),
    E.METHOD_NOT_ALLOWED: ErrorSpec(
        405, "Method not allowed", "The path does not take this HTTP method; use one the OpenAPI document lists for it."
    ),
    E.DOCUMENT_NOT_ISSUED: ErrorSpec(
        409, "Document not issued", "The document has not been issued yet: one of the case's handlers issues it by asking for it first."
    ),
    E.CONFLICT: ErrorSpec(
        409, "Conflict", "The request conflicts with the resource's current state; reload it before deciding what to send."
    ),
    E.DUPLICATE_CONFLICT: ErrorSpec(
        409,
        "Duplicate with other content",
        "The id (or a unique value such as a username) is taken by a resource with other content; a retry must repeat "
        "the original request exactly, anything new needs a new id or value.",
    ),
    E.CONCURRENT_CHANGE: ErrorSpec(409, "Changed concurrently", "The resource changed at the same moment; send the same request again."),
    E.INVALID_TRANSITION: ErrorSpec(
        409,
        "Step not allowed from this status",
        "The resource's status does not allow this step (`from_status` and `action` say which when given); reload it "
        "and take a step its status allows.",
    ),
    E.NOTICE_RECORDED: ErrorSpec(
        409, "Notice already recorded", "The enforcement notice (执法告知) is recorded once and cannot change; do not send other content."
    ),
    E.INSPECTION_SUBMITTED: ErrorSpec(
        409,
        "Inspection submitted",
        "The inspection is submitted and takes no further results, evidence or changes; a retry must repeat the original submit.",
    ),
    E.NOT_MAJOR: ErrorSpec(
        409, "Not a major hazard", "A governance plan (治理方案) is only for major hazards; do not send one for a general hazard."
    ),
    E.PLAN_REQUIRED: ErrorSpec(
        409,
        "Governance plan required",
        "A major hazard needs its governance plan (治理方案) before its rectification goes to review; add the plan first.",
    ),
    E.LOOKBACK_NOT_SELECTED: ErrorSpec(
        409, "No look-back for this hazard", "This hazard was not chosen for a look-back (回头看); none can be recorded for it."
    ),
    E.LOOKBACK_NOT_DUE: ErrorSpec(409, "Look-back not due", "The look-back is not due yet; record it from the date the detail gives."),
    E.DECISION_REQUIRED: ErrorSpec(409, "Decision required", "The case has no drafted decision; draft the decision first."),
    E.LEGAL_REVIEW_REQUIRED: ErrorSpec(
        409,
        "Legal review required",
        "A major decision (重大执法决定) needs the legal review's approval before the case is decided; wait for it.",
    ),
    E.DECISION_DEADLINE_PASSED: ErrorSpec(
        409, "Decision time limit passed", "The time limit for deciding the case has ended; record an approved extension, then decide."
    ),
    E.NOT_DECIDED: ErrorSpec(409, "Case not decided", "This document is issued when the case is decided; decide the case first."),
    E.DOCUMENT_UNAVAILABLE: ErrorSpec(
        409,
        "Document unavailable",
        "The case, inspection or hazard has not reached the step that issues this document (告知, hearing, decision, "
        "delivery, closing), or lacks what it is made from (a submitted inspection, hazards to order rectified, a "
        "review by the agency); take that step first.",
    ),
    E.NO_HEARING_RIGHT: ErrorSpec(
        409,
        "No hearing right",
        "The decision's measures give no right to a hearing (行政处罚法 第六十三条); the party makes a statement instead.",
    ),
    E.HEARING_REQUEST_LATE: ErrorSpec(
        409,
        "Hearing request too late",
        "The hearing is requested within five working days of the notice (行政处罚法 第六十四条); `hearing_request_due` has passed.",
    ),
    E.STATEMENT_UNANSWERED: ErrorSpec(
        409, "Statement unanswered", "Every statement of the party gets a reply (复核) before the decision; reply to the open ones first."
    ),
    E.STATEMENT_PERIOD_OPEN: ErrorSpec(
        409,
        "Statement period open",
        "The party has not been heard yet: wait for `statement_due`, a statement, or a written waiver before deciding.",
    ),
    E.HEARING_REQUEST_PERIOD_OPEN: ErrorSpec(
        409,
        "Hearing request period open",
        "The party may still request a hearing: wait for `hearing_request_due`, a hearing, or a written waiver before deciding.",
    ),
    E.COLLECTIVE_DISCUSSION_REQUIRED: ErrorSpec(
        409,
        "Collective discussion required",
        "A major decision is discussed collectively by the agency's leaders first (行政处罚法 第五十七条); record the discussion.",
    ),
    E.LEADER_APPROVAL_REQUIRED: ErrorSpec(
        409, "Leader approval required", "A major decision needs a leader's approval of the current draft first (POST /cases/{id}/approve)."
    ),
    E.PLAN_APPROVED: ErrorSpec(
        409,
        "Plan approved",
        "An approved plan never changes; make the change as a new version (POST /plans with `supersedes` naming it), "
        "which replaces it once a leader approves it.",
    ),
    E.PLAN_NOT_APPROVED: ErrorSpec(
        409,
        "Plan not approved",
        "Draws are made from the approved version of a plan only: a draft needs a leader's approval first, and a "
        "superseded version has been replaced by a newer one.",
    ),
    E.PLAN_EXISTS: ErrorSpec(
        409,
        "Plan exists",
        "The agency has a plan for this year already (`plan_id` names its latest version): edit that draft, or make a "
        "new version of the approved one with `supersedes`.",
    ),
    E.TASK_TAKEN: ErrorSpec(
        409,
        "Task already started",
        "The task has an inspection already (`inspection_id` names it) or is done; continue that inspection instead.",
    ),
    E.MEASURE_UNEVALUATED: ErrorSpec(
        409,
        "Measure unevaluated",
        "Every measure of the accident's investigation report needs a finding before the evaluation is completed; "
        "`measure_ids` lists those without one (POST /accidents/{id}/evaluation/findings).",
    ),
    E.CHECKLIST_VERSION_PUBLISHED: ErrorSpec(
        409,
        "Checklist version already published",
        "This code and version are published with other content, and a published version never changes; give the new "
        "content a new version (sending the same content again is answered 200).",
    ),
    E.EVIDENCE_MISSING: ErrorSpec(
        409,
        "Evidence missing from the store",
        "Evidence originals of the case are missing from the object store (`missing` lists them with their object "
        "keys), so no complete case file can be made; restore them from a backup, then ask again.",
    ),
    E.PAYLOAD_TOO_LARGE: ErrorSpec(
        413,
        "Payload too large",
        "The request body exceeds the operation's limit (4 KiB for the login, MAX_JSON_BODY_BYTES for JSON bodies, "
        "8 MiB for a batch of results, MAX_UPLOAD_BYTES for an upload); send a smaller body or split the batch.",
    ),
    E.FILE_TOO_LARGE: ErrorSpec(
        413, "File too large", "The evidence file is larger than its kind allows (the detail gives the limit); send a smaller file."
    ),
    E.UNSUPPORTED_MEDIA_TYPE: ErrorSpec(
        422,
        "Unsupported media type",
        "The body or file is not in an accepted format (evidence goes as multipart/form-data, photos as JPEG, PNG, "
        "WebP or HEIC); send it in one of those.",
        also=(415,),
    ),
    E.INSPECTOR_NOT_ELIGIBLE: ErrorSpec(
        422,
        "Officer not eligible",
        "A named officer is not an active, certified inspector of an agency supervising the enterprise; name other officers.",
    ),
    E.TWO_OFFICERS_REQUIRED: ErrorSpec(
        422,
        "Two certified officers required",
        "At least two officers holding enforcement certificates must be named (行政处罚法 第四十二条); add certified officers.",
    ),
    E.UNKNOWN_ITEM: ErrorSpec(
        422,
        "Unknown checklist item",
        "A result names a checklist or item that is not part of this inspection; use the inspection's own items.",
    ),
    E.RESULTS_INCOMPLETE: ErrorSpec(
        422, "Results incomplete", "Some checklist items have no result yet; send a result for every item before submitting."
    ),
    E.NOTICE_REQUIRED: ErrorSpec(
        422, "Notice required", "An enforcement inspection records its notice (执法告知) before it is submitted; record the notice first."
    ),
    E.ATTENDEES_INCOMPLETE: ErrorSpec(
        422,
        "Attendees incomplete",
        "The attendees lack a required person (principal, safety manager, operator, and an expert when experts take part); add them.",
    ),
    E.EVIDENCE_REQUIRED: ErrorSpec(
        422,
        "Photos required",
        "Photos are missing: hazard findings need their photos uploaded first, a rectification an after-photo for each "
        "finding photo; upload them and send their ids.",
    ),
    E.UNKNOWN_BASIS: ErrorSpec(
        422, "Unknown discretion entry", "A measure names no entry of the discretion table; take `basis_id` from GET /discretion."
    ),
    E.MEASURE_NOT_ALLOWED: ErrorSpec(
        422, "Measure not allowed", "The discretion entry does not allow this type of measure; choose a type the entry allows."
    ),
    E.OUTSIDE_DISCRETION: ErrorSpec(
        422, "Outside the discretion range", "The amount lies outside the range of the chosen discretion entry; choose an amount within it."
    ),
    E.HEARING_NOTICE_TOO_SHORT: ErrorSpec(
        422,
        "Hearing notice too short",
        "The party is told of a hearing at least seven working days before it (行政处罚法 第六十四条); schedule it later.",
    ),
    E.HOST_IS_INVESTIGATOR: ErrorSpec(
        422,
        "Host is an investigator",
        "A hearing is hosted by someone who did not investigate the case (行政处罚法 第六十四条); name someone not handling it.",
    ),
    E.FILE_REQUIRED: ErrorSpec(422, "File required", "The multipart body has no `file` part; send the file after the small fields."),
    E.MALFORMED_UPLOAD: ErrorSpec(422, "Malformed upload", "The multipart body cannot be parsed; send well-formed multipart/form-data."),
    E.EMPTY_FILE: ErrorSpec(422, "Empty file", "The uploaded file has no bytes; send the actual file."),
    E.CONTENT_MISMATCH: ErrorSpec(
        422,
        "Content does not match kind",
        "The file's bytes are not of the declared `kind`; declare the right kind or send the right file.",
    ),
    E.IMAGE_TOO_LARGE: ErrorSpec(422, "Image too large", "The photo has more pixels than accepted; send it at a lower resolution."),
    E.CORRUPT_FILE: ErrorSpec(422, "Corrupt file", "The photo cannot be decoded; send an intact image."),
    E.UPLOAD_MISSING: ErrorSpec(
        422, "Nothing uploaded yet", "Nothing has arrived at the presigned upload link; upload the file there, then complete."
    ),
    E.UPLOAD_MISMATCH: ErrorSpec(
        422,
        "Upload does not match",
        "The uploaded bytes differ in size or sha256 from what was declared and were discarded; upload the declared file again.",
    ),
    E.CHECKLIST_INVALID: ErrorSpec(
        422,
        "Checklist file invalid",
        "The checklist YAML does not fit the format (checklists/README.md): `field` names the first problem, `line` its "
        "line in the file, `errors` every problem; correct the file and send it again.",
    ),
    E.CHECKLIST_NOT_IN_FORCE: ErrorSpec(
        422,
        "Checklist not in force on the inspection date",
        "A named checklist version is not the one in force on the inspection's date (superseded, not yet in force or "
        "withdrawn); take the versions from GET /checklists?date=<inspection_date>.",
    ),
    E.UNKNOWN_SITE_TYPE: ErrorSpec(
        422,
        "Unknown site type",
        "A site type names no comprehensive-judgement rule of the inspection's checklists; use a `site_type` from their "
        "`combination_rules`.",
    ),
    E.EMPTY_POPULATION: ErrorSpec(
        422,
        "Nothing to draw from",
        "No enterprise matches the rule (the plan agency's tree, the rule's category and topic, classifications in "
        "force on the draw date); `rule_index` names the rule. Classify enterprises or correct the rule first.",
    ),
    E.NOT_ENOUGH_INSPECTORS: ErrorSpec(
        422,
        "Not enough eligible inspectors",
        "Fewer certified, active inspectors of the plan's agency without a declared conflict than a task needs; "
        "`rule_index` names the rule and `enterprise_id` the enterprise. Add inspectors or lower inspectors_per_task.",
    ),
    E.TASK_MISMATCH: ErrorSpec(
        422,
        "Inspection does not fit the task",
        "An inspection opened from a task is of the task's enterprise and made by its drawn inspectors (the caller one "
        "of them); `field` names what differs.",
    ),
    E.WEBHOOK_NOT_FOUND: ErrorSpec(404, "Webhook not found", "No webhook has this id; list them with GET /webhooks."),
    E.DELIVERY_NOT_FOUND: ErrorSpec(
        404, "Delivery not found", "This webhook has no delivery with this id; list them with GET /webhooks/{id}/deliveries."
    ),
    E.WEBHOOK_URL_REFUSED: ErrorSpec(
        422,
        "Webhook URL refused",
        "The receiver's `url` is not http(s), or names (or resolves to) a link-local, cloud-metadata or other address a "
        "webhook may not reach (loopback and private ranges only with WEBHOOK_ALLOW_PRIVATE); give a receiver's public "
        "http(s) address.",
    ),
    E.TOO_MANY_REQUESTS: ErrorSpec(429, "Too many requests", "Too many requests in a short time; wait before sending again."),
    E.LOGIN_THROTTLED: ErrorSpec(
        429,
        "Login throttled",
        "Too many failed logins for this username from this address, or from this address for any username; wait "
        "the seconds `Retry-After` (and the detail) gives before trying again.",
    ),
    E.HEADERS_TOO_LARGE: ErrorSpec(
        431,
        "Request header fields too large",
        "The request line and headers together exceed the server's limit (MAX_HEADER_BYTES); send fewer or shorter headers.",
    ),
    E.INTERNAL_ERROR: ErrorSpec(
        500, "Internal server error", "An unexpected server error, logged under the request id; report `request_id` if it persists."
    ),
    E.SERVICE_UNAVAILABLE: ErrorSpec(
        503,
        "Service unavailable",
        "A dependency is unavailable (`dependency` names it: `database` or `object_store`); nothing was changed. Retry "
        "the same request after `Retry-After` seconds, with backoff.",
    ),
}
del E

if set(ERRORS) != set(ErrorCode):  # pragma: no cover - a registry that drifts is a programming error
    raise RuntimeError(f"ERRORS and ErrorCode differ: {sorted(set(ErrorCode) ^ set(ERRORS))}")


def codes_for_status(status: int) -> list[ErrorCode]:
    """The registered codes a response with this status may carry, in registry order."""
    return [code for code, spec in ERRORS.items() if status in spec.statuses]


def registered(code: ErrorCode | str) -> ErrorCode:
    """The registry member for `code`; ValueError for a code that is not registered."""
    try:
        return ErrorCode(code)
    except ValueError:
        raise ValueError(f"unregistered error code {code!r}: add it to ErrorCode and ERRORS in backend/errors.py") from None


_DEFAULT_CODES: dict[int, ErrorCode] = {
    400: ErrorCode.BAD_REQUEST,
    401: ErrorCode.NOT_AUTHENTICATED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    409: ErrorCode.CONFLICT,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
    415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    422: ErrorCode.VALIDATION_ERROR,
    429: ErrorCode.TOO_MANY_REQUESTS,
    431: ErrorCode.HEADERS_TOO_LARGE,
    500: ErrorCode.INTERNAL_ERROR,
    503: ErrorCode.SERVICE_UNAVAILABLE,
}


def default_code(status: int) -> ErrorCode:
    """The code an error of this status carries when nothing more specific is known."""
    if status in _DEFAULT_CODES:
        return _DEFAULT_CODES[status]
    return ErrorCode.INTERNAL_ERROR if status >= 500 else ErrorCode.BAD_REQUEST


class AppError(Exception):
    """A domain error the client can act on. Services raise these; the handler turns them into problem details."""

    status = 400
    code: ErrorCode | str = ErrorCode.BAD_REQUEST  # always an ErrorCode member once a class or instance is made
    title = "Bad request"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.code = registered(cls.code)

    def __init__(
        self,
        detail: str,
        *,
        code: ErrorCode | str | None = None,
        field: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = registered(code)
        self.field = field
        self.headers = headers or {}  # response headers, such as Retry-After on a 429
        self.extra = extra


class InvalidInput(AppError):
    """Input that does not fit the schema: the same 400 a malformed JSON body gets."""

    status = 400
    code = ErrorCode.VALIDATION_ERROR
    title = "Invalid request"


class ValidationFailed(AppError):
    status = 422
    code = ErrorCode.VALIDATION_ERROR
    title = "Validation failed"


class NotFound(AppError):
    status = 404
    code = ErrorCode.NOT_FOUND
    title = "Not found"


class Forbidden(AppError):
    status = 403
    code = ErrorCode.FORBIDDEN
    title = "Forbidden"


class Conflict(AppError):
    status = 409
    code = ErrorCode.CONFLICT
    title = "Conflict"


class Unauthorized(AppError):
    status = 401
    code = ErrorCode.NOT_AUTHENTICATED
    title = "Not authenticated"


class TooManyRequests(AppError):
    status = 429
    code = ErrorCode.TOO_MANY_REQUESTS
    title = "Too many requests"


def problem(status: int, code: ErrorCode | str, title: str, detail: str, request: Request, **extra: Any) -> Response[dict]:
    body: dict[str, Any] = {
        "type": "about:blank",
        "status": status,
        "title": title,
        "detail": detail,
        "code": str(code),
        "instance": quote(request.url.path, safe="/"),  # a URI reference, also for a path with spaces or Chinese
    }
    headers: dict[str, str] = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    request_id = request.scope.get("state", {}).get("request_id")
    if request_id:
        body["request_id"] = request_id
        headers["X-Request-ID"] = request_id
    body.update({k: v for k, v in extra.items() if v is not None})
    return Response(content=body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def _field_name(error: dict[str, Any], request: Request | None = None) -> str | None:
    """The input as the client names it: a parameter declared under another name (`QueryParameter(name="date")`
    for the argument `on`) is reported under its wire name."""
    key = error.get("key")
    if not key:
        return None
    if request is not None and error.get("source") in ("query", "path", "header", "cookie"):
        try:
            parameter = request.route_handler.parsed_fn_signature.parameters.get(str(key))
        except Exception:  # no route handler (the request did not reach one): keep the key
            parameter = None
        wire_name = getattr(getattr(parameter, "kwarg_definition", None), "name", None) if parameter else None
        if isinstance(wire_name, str) and wire_name:
            return wire_name
    return str(key)


def handle_app_error(request: Request, exc: AppError) -> Response[dict]:
    response = problem(exc.status, exc.code, exc.title, exc.detail, request, field=exc.field, **exc.extra)
    response.headers.update(exc.headers)
    return response


def handle_validation_exception(request: Request, exc: ValidationException) -> Response[dict]:
    errors = [e for e in (exc.extra or []) if isinstance(e, dict)]
    fields = [
        {"field": _field_name(e, request), "message": str(e.get("message", "")).removeprefix("Value error, "), "source": e.get("source")}
        for e in errors
    ]
    first = next((f["field"] for f in fields if f["field"]), None)
    detail = "; ".join(f"{f['field'] or 'body'}: {f['message']}" for f in fields) or str(exc.detail)
    return problem(400, ErrorCode.VALIDATION_ERROR, "Invalid request", detail, request, field=first, errors=fields or None)


def handle_http_exception(request: Request, exc: HTTPException) -> Response[dict]:
    status = exc.status_code
    code = default_code(status)
    title = code.replace("_", " ").capitalize()
    if status >= 500:
        logger.error("HTTP %s on %s: %s", status, request.url.path, exc.detail)
    return problem(status, code, title, str(exc.detail), request)


def unavailable(request: Request, dependency: str, detail: str) -> Response[dict]:
    """`503 service_unavailable` naming the part that is down (`dependency`), with `Retry-After`."""
    settings = getattr(request.app.state, "settings", None)
    retry_after = getattr(settings, "retry_after_seconds", 5)
    response = problem(
        HTTP_503_SERVICE_UNAVAILABLE,
        ErrorCode.SERVICE_UNAVAILABLE,
        "Service unavailable",
        f"{detail}; retry in {retry_after} seconds or later.",
        request,
        dependency=dependency,
    )
    response.headers["Retry-After"] = str(retry_after)
    return response


def handle_dependency_unavailable(request: Request, exc: DependencyUnavailable) -> Response[dict]:
    """The part's `Outage` counted the failure where it happened (and logged it if it started an outage)."""
    return unavailable(request, exc.dependency, exc.detail)


def handle_unexpected(request: Request, exc: Exception) -> Response[dict]:
    if database_unreachable(exc):  # a 503 the client may retry, not a 500 bug; logged once per outage, not per request
        outages = getattr(request.app.state, "outages", {})
        if DATABASE in outages:
            outages[DATABASE].failed(exc)
        return unavailable(request, DATABASE, "The database is not answering")
    logger.exception("Unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(
        HTTP_500_INTERNAL_SERVER_ERROR,
        ErrorCode.INTERNAL_ERROR,
        "Internal server error",
        "An unexpected error occurred; it has been logged.",
        request,
    )


exception_handlers = {
    AppError: handle_app_error,
    DependencyUnavailable: handle_dependency_unavailable,
    ValidationException: handle_validation_exception,
    HTTPException: handle_http_exception,
    Exception: handle_unexpected,
}
