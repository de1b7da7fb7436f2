"""billing's admin pages: reports for billers (A/R aging, denials, underpayments), each with its
CSV download, mounted at /admin/billing/reports/ (clinic/urls_tenants.py) and linked from the
admin's index (its Billing section). Like the API's: `view` on claims (billers, clinic
admins); every patient a page names is recorded in the audit trail as read."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.views.decorators.http import require_GET

from audit import services as audit
from clinic.inputs import plausible_date_error

from .. import reports

PERMISSION = "billing.view_claim"


@dataclass(frozen=True)
class Cell:
    text: str
    href: str = ""
    money: bool = False


def _link(name: str, *args) -> str:
    """The admin page `name`, or "" while no such page is registered."""
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return ""


def _money(value) -> Cell:
    return Cell(str(value), money=True)


def _csv(table: reports.Table, filename: str) -> HttpResponse:
    response = HttpResponse(table.csv(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
    return response


def _page(request: HttpRequest, *, title: str, slug: str, header, rows, **extra) -> HttpResponse:
    context = {
        **admin.site.each_context(request),
        "title": title,
        "slug": slug,
        "header": header,
        "rows": rows,
        "reports": REPORTS,
        "csv_query": _with_csv(request),
        **extra,
    }
    return TemplateResponse(request, "billing/admin/report.html", context)


def _with_csv(request: HttpRequest) -> str:
    query = request.GET.copy()
    query["format"] = "csv"
    return query.urlencode()


def _audit(request: HttpRequest, patient_ids, label: str) -> None:
    for patient_id in sorted(set(patient_ids)):
        audit.record(request, audit.READ, patient=patient_id, label=label)


def _allowed(request: HttpRequest) -> None:
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied


def _as_of(request: HttpRequest) -> tuple[date | None, str]:
    raw = request.GET.get("as_of", "")
    if not raw:
        return None, ""
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        return None, "As of: give a date as YYYY-MM-DD."
    if error := plausible_date_error(day):
        return None, f"As of: {error}"
    return day, ""


PAGE_SIZE = 50


@require_GET
def ar_aging_view(request: HttpRequest) -> HttpResponse:
    """The aging a page of rows at a time (Django's paginator: `?page=`), the totals the whole
    report's; the CSV holds every row. Each patient shown (or exported) is an audited read."""
    _allowed(request)
    by = request.GET.get("by", "payer")
    by = by if by in reports.BY else "payer"
    as_of, error = _as_of(request)
    if request.GET.get("format") == "csv":
        report = reports.ar_aging(by=by, as_of=as_of)
        if by == "patient":
            _audit(request, [row.key for row in report.rows], "A/R aging by patient")
        return _csv(reports.aging_table(report), "ar-aging")
    found = reports.ar_aging_rows(by=by, as_of=as_of)
    page = Paginator(found, PAGE_SIZE).get_page(request.GET.get("page"))
    if by == "patient":
        _audit(request, [row.key for row in page], "A/R aging by patient")
    rows = []
    for row in page:
        if row.key is None:
            name = Cell(row.label)
        elif by == "payer":
            name = Cell(row.label, _link("admin:practice_payer_change", row.key))
        else:
            name = Cell(row.label, _link("admin:practice_patient_change", row.key))
        rows.append([name, *(_money(b) for b in row.buckets), _money(row.total)])
    totals = reports.ar_aging_totals(as_of=found.as_of)
    return _page(
        request,
        title="A/R aging",
        slug="ar-aging",
        header=[by.title(), *reports.BUCKETS, "Total"],
        rows=rows,
        totals=[Cell("Total"), *(_money(t) for t in totals), _money(sum(totals, reports.ZERO))],
        by=by,
        as_of=found.as_of,
        error=error,
        page=page,
        page_query=_without_page(request),
        note="Aged by the service date: days from the visit to the as-of day.",
    )


def _without_page(request: HttpRequest) -> str:
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


@require_GET
def denials_view(request: HttpRequest) -> HttpResponse:
    _allowed(request)
    found = reports.denials()
    _audit(request, [d.patient_id for d in found], "Denials worklist")
    if request.GET.get("format") == "csv":
        return _csv(reports.denials_table(found), "denials")
    rows = [
        [
            Cell(f"C{d.claim_id}", _link("admin:billing_claim_change", d.claim_id)),
            Cell(d.patient, _link("admin:practice_patient_change", d.patient_id)),
            Cell(d.payer),
            Cell(d.service_date.isoformat()),
            Cell(f"{d.code} × {d.units}"),
            _money(d.amount),
            Cell(d.explanation),
            Cell(
                d.authorization_number or ("none on file" if d.authorization_reason else ""),
                _link("admin:authorizations_authorization_change", d.authorization_id)
                if d.authorization_id
                else "",
            ),
        ]
        for d in found
    ]
    return _page(
        request,
        title="Denials",
        slug="denials",
        header=[
            "Claim",
            "Patient",
            "Payer",
            "Service date",
            "Code",
            "Billed",
            "Why",
            "Authorization",
        ],
        rows=rows,
        note="Claim lines a payer paid nothing on, with its reasons in plain English.",
    )


@require_GET
def underpayments_view(request: HttpRequest) -> HttpResponse:
    _allowed(request)
    found = reports.underpayments()
    _audit(request, [u.patient_id for u in found], "Underpayments report")
    if request.GET.get("format") == "csv":
        return _csv(reports.underpayments_table(found), "underpayments")
    rows = [
        [
            Cell(f"C{u.claim_id}", _link("admin:billing_claim_change", u.claim_id)),
            Cell(u.patient, _link("admin:practice_patient_change", u.patient_id)),
            Cell(u.payer),
            Cell(u.service_date.isoformat()),
            Cell(f"{u.code} × {u.units}"),
            _money(u.expected_allowed),
            _money(u.paid),
            _money(u.patient_share),
            _money(u.shortfall),
        ]
        for u in found
    ]
    return _page(
        request,
        title="Underpayments",
        slug="underpayments",
        header=[
            "Claim",
            "Patient",
            "Payer",
            "Service date",
            "Code",
            "Expected allowed",
            "Paid",
            "Patient share",
            "Short by",
        ],  # fmt: skip
        rows=rows,
        note="Lines the payer allowed (paid plus patient share) less than the fee schedule "
        "expects.",
    )


REPORTS = (
    ("ar-aging", "A/R aging", "billing_report_ar_aging"),
    ("denials", "Denials", "billing_report_denials"),
    ("underpayments", "Underpayments", "billing_report_underpayments"),
)


def report_urls() -> list:
    """Mounted at /admin/billing/reports/ (clinic/urls_tenants.py): the admin's own sign-in
    check, then `view` on claims (403)."""
    wrap: Callable = admin.site.admin_view
    return [
        path("ar-aging/", wrap(ar_aging_view), name="billing_report_ar_aging"),
        path("denials/", wrap(denials_view), name="billing_report_denials"),
        path("underpayments/", wrap(underpayments_view), name="billing_report_underpayments"),
    ]
