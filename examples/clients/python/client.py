#!/usr/bin/env python3
"""A Python caller of pasarela: every service against `pasarela dev`, with google.rpc error
details decoded from `grpc-status-details-bin`, a deadline and an idempotency key on a
charge. Each call checks what it got; the first failed check exits non-zero.

Environment: PASARELA_ADDR (default 127.0.0.1:50051), PASARELA_TOKEN (default: minted with
`pasarela token --scope '*'`), SANDBOX_ADMIN (the sandbox's admin URL, printed by
`pasarela dev`; the provider-outage check is skipped without it).
"""

import json
import os
import subprocess
import sys
import urllib.request
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "generated"))

import grpc  # noqa: E402
from google.rpc import error_details_pb2  # noqa: E402
from grpc_status import rpc_status  # noqa: E402

from pasarela.bureau.v1 import bureau_pb2, bureau_pb2_grpc  # noqa: E402
from pasarela.common.v1 import common_pb2  # noqa: E402
from pasarela.operations.v1 import operations_pb2, operations_pb2_grpc  # noqa: E402
from pasarela.recurring_payments.v1 import (  # noqa: E402
    recurring_payments_pb2 as rp,
    recurring_payments_pb2_grpc as rp_grpc,
)
from pasarela.security.v1 import security_pb2, security_pb2_grpc  # noqa: E402

ADDR = os.environ.get("PASARELA_ADDR", "127.0.0.1:50051")
SANDBOX_ADMIN = os.environ.get("SANDBOX_ADMIN", "")

# A seeded sandbox wallet of its own (the Node client uses another one).
WALLET = ("DOCUMENT_TYPE_CC", "1000000001", "3000000001")
COMMERCE_ID = "3fa85f64-5717-4562-b3fc-2c963f66afa6"

DETAIL_TYPES = {
    "error_info": error_details_pb2.ErrorInfo,
    "bad_request": error_details_pb2.BadRequest,
    "localized": error_details_pb2.LocalizedMessage,
    "retry": error_details_pb2.RetryInfo,
}


def check(condition, what):
    if not condition:
        sys.exit(f"FAILED: {what}")
    print(f"ok: {what}")


def token():
    given = os.environ.get("PASARELA_TOKEN")
    if given:
        return given
    minted = subprocess.run(
        ["pasarela", "token", "--scope", "*"], check=True, capture_output=True, text=True
    )
    return minted.stdout.split()[-1]


def details(error):
    """The google.rpc details of a failed call, by kind."""
    status = rpc_status.from_call(error)
    found = {}
    for packed in status.details if status else []:
        for kind, message_type in DETAIL_TYPES.items():
            if packed.Is(message_type.DESCRIPTOR):
                message = message_type()
                packed.Unpack(message)
                found[kind] = message
    return found


def failure(call):
    """Runs `call`, which must fail; answers its code and decoded details."""
    try:
        call()
    except grpc.RpcError as error:
        return error.code(), details(error)
    sys.exit("FAILED: a call that should fail succeeded")


def wallet():
    kind, number, product = WALLET
    holder = common_pb2.Identification(type=common_pb2.DocumentType.Value(kind), number=number)
    return rp.Wallet(holder=holder, product_number=product)


def bureau(channel, metadata):
    stub = bureau_pb2_grpc.BureauServiceStub(channel)
    answer = stub.GetPasswordExpiration(
        bureau_pb2.GetPasswordExpirationRequest(
            member_code="PM00000001",
            password="Abc12345",
            test_case_id="663567bb713cf2110a110679",
        ),
        metadata=metadata,
        timeout=10,
    )
    date = answer.expiration_date
    check((date.year, date.month, date.day) == (2030, 12, 31), "bureau: expiration date 2030-12-31")

    code, found = failure(
        lambda: stub.GetPasswordExpiration(
            bureau_pb2.GetPasswordExpirationRequest(
                member_code="PM00000001", password="short", test_case_id="663567bb713cf2110a110679"
            ),
            metadata=metadata,
        )
    )
    fields = [v.field for v in found["bad_request"].field_violations] if "bad_request" in found else []
    check(code == grpc.StatusCode.INVALID_ARGUMENT and "password" in fields,
          f"bureau: a short password is INVALID_ARGUMENT with a BadRequest on password ({fields})")

    code, found = failure(
        lambda: stub.GetPasswordExpiration(
            bureau_pb2.GetPasswordExpirationRequest(
                member_code="PM00000001", password="Abc12345", test_case_id="663567bb713cf2110a11067a"
            ),
            metadata=metadata,
        )
    )
    reason = found["error_info"].reason if "error_info" in found else ""
    check(code == grpc.StatusCode.FAILED_PRECONDITION and reason == "BUREAU_CREDENTIALS_REJECTED",
          f"bureau: rejected credentials are FAILED_PRECONDITION {reason}")

    if not SANDBOX_ADMIN:
        print("skipped: provider outage (no SANDBOX_ADMIN)")
        return
    rule = {"provider": "kiban", "fault": {"type": "status", "status": 503}, "times": 3}
    request = urllib.request.Request(
        f"{SANDBOX_ADMIN}/faults", data=json.dumps(rule).encode(), method="POST",
        headers={"content-type": "application/json"},
    )
    urllib.request.urlopen(request).read()
    code, found = failure(
        lambda: stub.GetPasswordExpiration(
            bureau_pb2.GetPasswordExpirationRequest(
                member_code="PM00000001", password="Abc12345", test_case_id="663567bb713cf2110a110679"
            ),
            metadata=metadata,
        )
    )
    retry = found.get("retry")
    check(code == grpc.StatusCode.UNAVAILABLE and retry is not None and retry.retry_delay.ToTimedelta().total_seconds() > 0,
          "bureau: a Kiban outage is UNAVAILABLE with RetryInfo")
    urllib.request.urlopen(urllib.request.Request(f"{SANDBOX_ADMIN}/faults", method="DELETE")).read()


def security(channel, metadata):
    stub = security_pb2_grpc.SecurityServiceStub(channel)
    customer = common_pb2.Identification(type=common_pb2.DOCUMENT_TYPE_CC, number="1007641")
    answer = stub.GetPasswordStatus(
        security_pb2.GetPasswordStatusRequest(
            transaction_id="4835799410",
            customer_type=security_pb2.CUSTOMER_TYPE_NATURAL,
            customer=customer,
        ),
        metadata=metadata,
        timeout=10,
    )
    check(answer.status == security_pb2.PASSWORD_STATUS_ACTIVE, "security: the customer's password is active")

    stranger = common_pb2.Identification(type=common_pb2.DOCUMENT_TYPE_CC, number="99999999")
    code, found = failure(
        lambda: stub.GetPasswordStatus(
            security_pb2.GetPasswordStatusRequest(
                transaction_id="4835799411",
                customer_type=security_pb2.CUSTOMER_TYPE_NATURAL,
                customer=stranger,
            ),
            metadata=metadata,
        )
    )
    localized = found["localized"].message if "localized" in found else ""
    check(code == grpc.StatusCode.NOT_FOUND and localized,
          f"security: an unknown customer is NOT_FOUND with the bank's text ({localized!r})")


def recurring_payments(channel, metadata):
    stub = rp_grpc.RecurringPaymentsServiceStub(channel)
    commerce = rp.Commerce(commerce_id=COMMERCE_ID, commerce_name="Comercio de ejemplo")
    run = uuid.uuid4().hex[:12]
    requested = stub.RequestSubscription(
        rp.RequestSubscriptionRequest(commerce=commerce, wallet=wallet()), metadata=metadata, timeout=10
    )
    check(requested.otp_session_id and requested.lab_otp_value, "recurring payments: an OTP session")
    activated = stub.ActivateSubscription(
        rp.ActivateSubscriptionRequest(
            idempotency_key=f"python-activate-{run}",
            commerce=commerce,
            wallet=wallet(),
            otp_value=requested.lab_otp_value,
            otp_session_id=requested.otp_session_id,
            maximum_amount=common_pb2.Money(currency_code="COP", minor_units=5_000_000),
        ),
        metadata=metadata,
        timeout=10,
    )
    check(activated.subscription.subscription_id, "recurring payments: activated")

    charge = rp.ChargeSubscriptionRequest(
        idempotency_key=f"python-charge-{run}",
        commerce=commerce,
        wallet=wallet(),
        amount=common_pb2.Money(currency_code="COP", minor_units=1_500_050),
        invoice_id="PY12345678",
        invoice_description="PAGO MENSUAL",
    )
    first = stub.ChargeSubscription(charge, metadata=metadata, timeout=5)
    again = stub.ChargeSubscription(charge, metadata=metadata, timeout=5)
    check(first.approval_number and again.approval_number == first.approval_number,
          f"recurring payments: one key, one approval ({first.approval_number})")

    reused = rp.ChargeSubscriptionRequest()
    reused.CopyFrom(charge)
    reused.amount.minor_units = 1_000
    code, found = failure(lambda: stub.ChargeSubscription(reused, metadata=metadata, timeout=5))
    reason = found["error_info"].reason if "error_info" in found else ""
    check(code == grpc.StatusCode.FAILED_PRECONDITION and reason == "IDEMPOTENCY_KEY_REUSED",
          "recurring payments: another charge under the key is IDEMPOTENCY_KEY_REUSED")

    cancelled = stub.CancelSubscription(
        rp.CancelSubscriptionRequest(idempotency_key=f"python-cancel-{run}", commerce=commerce, wallet=wallet()),
        metadata=metadata,
        timeout=10,
    )
    check(cancelled.result.status == 0, "recurring payments: cancelled")


def operations(channel, metadata):
    stub = operations_pb2_grpc.OperationsServiceStub(channel)
    listed = stub.ListUnknownOutcomes(operations_pb2.ListUnknownOutcomesRequest(), metadata=metadata, timeout=5)
    check(all(o.provider_transaction_id for o in listed.outcomes),
          f"operations: {len(listed.outcomes)} unknown outcomes listed")


def main():
    metadata = [("authorization", f"Bearer {token()}")]
    with grpc.insecure_channel(ADDR) as channel:
        bureau(channel, metadata)
        security(channel, metadata)
        recurring_payments(channel, metadata)
        operations(channel, metadata)
    print("python client: all checks passed")


if __name__ == "__main__":
    main()
