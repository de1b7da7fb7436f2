"""axe-core (axe-playwright-python, which evaluates axe's own script in the page: no file is
served, so the Content Security Policy stays as it is) over a page of a browser test.

`axe_assert(page)` fails the test on any critical or serious violation (WCAG 2.x A and AA
rules and axe's best practices), naming each rule and the elements it found."""

from axe_playwright_python.sync_playwright import Axe

BLOCKING = ("critical", "serious")
_axe = Axe()


def axe_violations(page, *, impacts: tuple[str, ...] = BLOCKING) -> list[dict]:
    from tests.live import CSP_VIOLATIONS

    before = len(CSP_VIOLATIONS)
    results = _axe.run(page, options={"resultTypes": ["violations"]})
    page.evaluate("0")  # let the console events of the run arrive
    # axe adds a <style> element of its own while it runs, which the pages' policy refuses:
    # not a violation of ours (every other one still fails the test).
    CSP_VIOLATIONS[before:] = [
        message for message in CSP_VIOLATIONS[before:] if "style" not in message.lower()
    ]
    return [
        violation
        for violation in results.response["violations"]
        if violation.get("impact") in impacts
    ]


def axe_report(violations: list[dict]) -> str:
    lines = []
    for violation in violations:
        lines.append(f"{violation['impact']}: {violation['id']} ({violation['help']})")
        for node in violation["nodes"][:5]:
            lines.append(f"    {' '.join(map(str, node['target']))}: {node['failureSummary']}")
    return "\n".join(lines)


def axe_check(page) -> str:
    """'' when axe finds nothing critical or serious on the page, else what it found."""
    violations = axe_violations(page)
    return f"axe on {page.url}:\n{axe_report(violations)}" if violations else ""


def axe_assert(page) -> None:
    found = axe_check(page)
    assert not found, found
