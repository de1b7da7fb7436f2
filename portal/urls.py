from django.urls import path

from accounts.lockout import door_limits

from . import auth, billing, views, waitlist

app_name = "portal"

urlpatterns = [
    path("", views.home, name="home"),
    path("practitioners/", views.practitioners, name="practitioners"),
    path("practitioners/<int:pk>/", views.practitioner, name="practitioner"),
    path("book/", views.book, name="book"),
    path(
        "authorization-requests/",
        views.authorization_request,
        name="authorization-request",
    ),
    path("appointments/", views.appointments, name="appointments"),
    path("appointments/<int:pk>/", views.appointment, name="appointment"),
    path(
        "appointments/<int:pk>/calendar.ics",
        views.appointment_calendar,
        name="appointment-calendar",
    ),
    path("appointments/<int:pk>/cancel/", views.appointment_cancel, name="cancel"),
    path("appointments/<int:pk>/reschedule/", views.appointment_reschedule, name="reschedule"),
    path(
        "appointments/<int:pk>/reschedule/confirm/",
        views.appointment_reschedule_confirm,
        name="reschedule-confirm",
    ),
    path("waitlist/", waitlist.waitlist, name="waitlist"),
    path("waitlist/live/", waitlist.waitlist_live, name="waitlist-live"),
    path("your-data/", views.my_data, name="my-data"),
    path("your-data/download.<str:fmt>", views.my_data_download, name="my-data-download"),
    path("balance/", billing.balance, name="balance"),
    path("balance/statement.pdf", billing.statement_download, name="statement-download"),
    path("balance/superbill.pdf", billing.superbill_download, name="superbill-download"),
    path("balance/pay/", billing.pay, name="pay"),
    path("balance/receipts/<int:pk>/", billing.receipt, name="receipt"),
    path("smart/", views.smart_new, name="smart"),
    path("smart/<uuid:job_id>/", views.smart_status, name="smart-status"),
    path(
        "smart/<uuid:job_id>/status/",
        views.smart_status_fragment,
        name="smart-status-fragment",
    ),
    path("signup/", door_limits("signup")(auth.signup), name="signup"),
    path("signup/sent/", auth.signup_sent, name="signup-sent"),
    path("signup/<uidb64>/<token>/", auth.signup_confirm, name="signup-confirm"),
    path("signin/", door_limits("login")(auth.SignInView.as_view()), name="signin"),
    path("signout/", auth.SignOutView.as_view(), name="signout"),
    path("signout/everywhere/", auth.sign_out_everywhere, name="signout-everywhere"),
    path(
        "password-reset/",
        door_limits("password_reset", "password_reset_email")(auth.PasswordResetView.as_view()),
        name="password-reset",
    ),
    path("password-reset/sent/", auth.PasswordResetSentView.as_view(), name="password-reset-sent"),
    path(
        "password-reset/<uidb64>/<token>/",
        auth.PasswordResetConfirmView.as_view(),
        name="password-reset-confirm",
    ),
    path("password-reset/done/", auth.PasswordResetDoneView.as_view(), name="password-reset-done"),
]
