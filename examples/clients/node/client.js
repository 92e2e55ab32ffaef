#!/usr/bin/env node
// A Node caller of pasarela: every service against `pasarela dev`, with google.rpc error
// details decoded from `grpc-status-details-bin`, a deadline and an idempotency key on a
// charge. The contracts are loaded from proto/ by @grpc/proto-loader; each call checks what
// it got, and the first failed check exits non-zero.
//
// Environment: PASARELA_ADDR (default 127.0.0.1:50051), PASARELA_TOKEN (default: minted
// with `pasarela token --scope '*'`), SANDBOX_ADMIN (the sandbox's admin URL, printed by
// `pasarela dev`; the provider-outage check is skipped without it).

"use strict";

const path = require("node:path");
const crypto = require("node:crypto");
const { execFileSync } = require("node:child_process");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");
const protobuf = require("protobufjs");

const PROTO = path.join(__dirname, "..", "..", "..", "proto");
const ADDR = process.env.PASARELA_ADDR || "127.0.0.1:50051";
const SANDBOX_ADMIN = process.env.SANDBOX_ADMIN || "";

// A seeded sandbox wallet of its own (the Python client uses another one).
const WALLET = {
  holder: { type: "DOCUMENT_TYPE_CE", number: "2000000002" },
  product_number: "3000000002",
};
const COMMERCE = { commerce_id: "3fa85f64-5717-4562-b3fc-2c963f66afa6", commerce_name: "Comercio de ejemplo" };

const SERVICES = [
  "pasarela/bureau/v1/bureau.proto",
  "pasarela/security/v1/security.proto",
  "pasarela/recurring_payments/v1/recurring_payments.proto",
  "pasarela/operations/v1/operations.proto",
];

function load() {
  const definition = protoLoader.loadSync(SERVICES, {
    includeDirs: [PROTO],
    keepCase: true,
    enums: String,
    longs: Number,
    defaults: true,
    oneofs: true,
  });
  return grpc.loadPackageDefinition(definition).pasarela;
}

// google.rpc.Status and its details, read with protobufjs from proto/google/rpc.
function detailTypes() {
  const root = new protobuf.Root();
  root.resolvePath = (_, target) =>
    target.startsWith("google/protobuf/") ? target : path.join(PROTO, target);
  root.loadSync(["google/rpc/error_details.proto", "google/protobuf/any.proto"]);
  const status = new protobuf.Type("Status")
    .add(new protobuf.Field("code", 1, "int32"))
    .add(new protobuf.Field("message", 2, "string"))
    .add(new protobuf.Field("details", 3, "google.protobuf.Any", "repeated"));
  root.lookup("google.rpc").add(status);
  return {
    status: root.lookupType("google.rpc.Status"),
    kinds: {
      error_info: root.lookupType("google.rpc.ErrorInfo"),
      bad_request: root.lookupType("google.rpc.BadRequest"),
      localized: root.lookupType("google.rpc.LocalizedMessage"),
      retry: root.lookupType("google.rpc.RetryInfo"),
    },
  };
}

const DETAILS = detailTypes();

function check(condition, what) {
  if (!condition) {
    console.error(`FAILED: ${what}`);
    process.exit(1);
  }
  console.log(`ok: ${what}`);
}

function token() {
  if (process.env.PASARELA_TOKEN) return process.env.PASARELA_TOKEN;
  const out = execFileSync("pasarela", ["token", "--scope", "*"], { encoding: "utf8" });
  return out.trim().split(/\s+/).pop();
}

// The google.rpc details of a failed call, by kind.
function details(error) {
  const found = {};
  const raw = error.metadata && error.metadata.get("grpc-status-details-bin")[0];
  if (!raw) return found;
  const status = DETAILS.status.decode(raw);
  for (const packed of status.details) {
    for (const [kind, type] of Object.entries(DETAILS.kinds)) {
      if (packed.type_url === `type.googleapis.com/${type.fullName.slice(1)}`) {
        found[kind] = type.toObject(type.decode(packed.value), { longs: Number });
      }
    }
  }
  return found;
}

function call(client, method, request, metadata, seconds = 10) {
  return new Promise((resolve, reject) => {
    const deadline = new Date(Date.now() + seconds * 1000);
    client[method](request, metadata, { deadline }, (error, answer) =>
      error ? reject(error) : resolve(answer),
    );
  });
}

async function failure(promise) {
  try {
    await promise;
  } catch (error) {
    return { code: error.code, found: details(error) };
  }
  check(false, "a call that should fail succeeded");
}

async function bureau(pasarela, channel, metadata) {
  const client = new pasarela.bureau.v1.BureauService(ADDR, channel);
  const ask = (password, test_case_id) =>
    call(client, "GetPasswordExpiration", { member_code: "PM00000001", password, test_case_id }, metadata);
  const answer = await ask("Abc12345", "663567bb713cf2110a110679");
  const date = answer.expiration_date;
  check(date.year === 2030 && date.month === 12 && date.day === 31, "bureau: expiration date 2030-12-31");

  let { code, found } = await failure(ask("short", "663567bb713cf2110a110679"));
  const fields = (found.bad_request?.fieldViolations || []).map((v) => v.field);
  check(code === grpc.status.INVALID_ARGUMENT && fields.includes("password"),
    `bureau: a short password is INVALID_ARGUMENT with a BadRequest on password (${fields})`);

  ({ code, found } = await failure(ask("Abc12345", "663567bb713cf2110a11067a")));
  check(code === grpc.status.FAILED_PRECONDITION && found.error_info?.reason === "BUREAU_CREDENTIALS_REJECTED",
    `bureau: rejected credentials are FAILED_PRECONDITION ${found.error_info?.reason}`);

  if (!SANDBOX_ADMIN) {
    console.log("skipped: provider outage (no SANDBOX_ADMIN)");
    return;
  }
  const rule = { provider: "kiban", fault: { type: "status", status: 503 }, times: 3 };
  await fetch(`${SANDBOX_ADMIN}/faults`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(rule),
  });
  ({ code, found } = await failure(ask("Abc12345", "663567bb713cf2110a110679")));
  const delay = Number(found.retry?.retryDelay?.seconds || 0) + Number(found.retry?.retryDelay?.nanos || 0) / 1e9;
  check(code === grpc.status.UNAVAILABLE && delay > 0, "bureau: a Kiban outage is UNAVAILABLE with RetryInfo");
  await fetch(`${SANDBOX_ADMIN}/faults`, { method: "DELETE" });
}

async function security(pasarela, channel, metadata) {
  const client = new pasarela.security.v1.SecurityService(ADDR, channel);
  const status = (number, transaction_id) =>
    call(client, "GetPasswordStatus", {
      transaction_id,
      customer_type: "CUSTOMER_TYPE_NATURAL",
      customer: { type: "DOCUMENT_TYPE_CC", number },
    }, metadata);
  const answer = await status("1007641", "4835799410");
  check(answer.status === "PASSWORD_STATUS_ACTIVE", "security: the customer's password is active");
  const { code, found } = await failure(status("99999999", "4835799411"));
  check(code === grpc.status.NOT_FOUND && found.localized?.message,
    `security: an unknown customer is NOT_FOUND with the bank's text (${found.localized?.message})`);
}

async function recurringPayments(pasarela, channel, metadata) {
  const client = new pasarela.recurring_payments.v1.RecurringPaymentsService(ADDR, channel);
  const run = crypto.randomUUID().slice(0, 12);
  const requested = await call(client, "RequestSubscription", { commerce: COMMERCE, wallet: WALLET }, metadata);
  check(requested.otp_session_id && requested.lab_otp_value, "recurring payments: an OTP session");
  const activated = await call(client, "ActivateSubscription", {
    idempotency_key: `node-activate-${run}`,
    commerce: COMMERCE,
    wallet: WALLET,
    otp_value: requested.lab_otp_value,
    otp_session_id: requested.otp_session_id,
    maximum_amount: { currency_code: "COP", minor_units: 5000000 },
  }, metadata);
  check(activated.subscription?.subscription_id, "recurring payments: activated");

  const charge = {
    idempotency_key: `node-charge-${run}`,
    commerce: COMMERCE,
    wallet: WALLET,
    amount: { currency_code: "COP", minor_units: 1500050 },
    invoice_id: "JS12345678",
    invoice_description: "PAGO MENSUAL",
  };
  const first = await call(client, "ChargeSubscription", charge, metadata, 5);
  const again = await call(client, "ChargeSubscription", charge, metadata, 5);
  check(first.approval_number && again.approval_number === first.approval_number,
    `recurring payments: one key, one approval (${first.approval_number})`);

  const reused = { ...charge, amount: { currency_code: "COP", minor_units: 1000 } };
  const { code, found } = await failure(call(client, "ChargeSubscription", reused, metadata, 5));
  check(code === grpc.status.FAILED_PRECONDITION && found.error_info?.reason === "IDEMPOTENCY_KEY_REUSED",
    "recurring payments: another charge under the key is IDEMPOTENCY_KEY_REUSED");

  const cancelled = await call(client, "CancelSubscription", {
    idempotency_key: `node-cancel-${run}`, commerce: COMMERCE, wallet: WALLET,
  }, metadata);
  check(cancelled.result.status === 0, "recurring payments: cancelled");
}

async function operations(pasarela, channel, metadata) {
  const client = new pasarela.operations.v1.OperationsService(ADDR, channel);
  const listed = await call(client, "ListUnknownOutcomes", {}, metadata, 5);
  check(listed.outcomes.every((o) => o.provider_transaction_id),
    `operations: ${listed.outcomes.length} unknown outcomes listed`);
}

async function main() {
  const pasarela = load();
  const channel = grpc.credentials.createInsecure();
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${token()}`);
  await bureau(pasarela, channel, metadata);
  await security(pasarela, channel, metadata);
  await recurringPayments(pasarela, channel, metadata);
  await operations(pasarela, channel, metadata);
  console.log("node client: all checks passed");
}

main().catch((error) => {
  console.error(`FAILED: ${error.stack || error}`);
  process.exit(1);
});
