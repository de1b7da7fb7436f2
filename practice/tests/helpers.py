from clinic.permissions import ALL_ROLES

ANONYMOUS = "anonymous"
ROLES_AND_ANONYMOUS = (ANONYMOUS, *ALL_ROLES)


def problem_of(response, status: int, code: str) -> dict:
    """Assert `response` is an RFC 9457 problem with `status` and `code`; return its body."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["code"] == code, body
    return body
