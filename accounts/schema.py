"""OpenAPI: the clinic-bound JWT is documented as simplejwt's bearer scheme."""

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme


class ClinicJWTScheme(SimpleJWTScheme):
    target_class = "accounts.auth.ClinicJWTAuthentication"
    name = "jwtAuth"
