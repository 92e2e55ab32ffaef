//! The rows of the spec's error tables the emulator answers with (HTTP status, code, type,
//! description), plus the few codes the spec leaves unnamed, marked "sandbox".

use super::envelope::{Fault, row};

// S1 and S13: users and password states.
pub const USER_NOT_FOUND: Fault = row(
    404,
    "32",
    "OUD",
    "ERROR: Buscando el usuario-El usuario no existe",
);
pub const STATUS_USER_NOT_FOUND: Fault = row(404, "32", "RGN", "El usuario no existe");
// 401, as S13's table prints it: only the status tells it from "user does not exist".
pub const ALREADY_IN_STATE: Fault = row(
    401,
    "32",
    "RGN",
    "La clave ya se encuentra en el estado solicitado",
);
pub const INVALID_PASSWORD_STATUS: Fault =
    row(400, "1001", "RGN", "El estado de la clave es invalido");
pub const BLOCKED_FOR_CHANNEL_STATUS: Fault =
    row(401, "ZB", "STA", "CLIENT BLOCKED FOR THIS CHANNEL");

// S2-S4: one-time codes.
pub const OTC_CUSTOMER_NOT_FOUND: Fault = row(404, "1006", "BDA", "NO FOUND");
pub const OTC_NO_CONTACT: Fault = row(400, "10", "BDA", "Error en Generar Otc");
pub const OTC_WRONG: Fault = row(400, "10", "BDA", "Error en validar Otc - Otc invalida");
pub const OTC_EXPIRED: Fault = row(400, "10", "BDA", "Error en validar Otc - Otc vencida");
pub const OTC_ATTEMPTS: Fault = row(
    400,
    "10",
    "BDA",
    "Error en validar Otc - Numero de intentos superado",
);
pub const OTC_NONE: Fault = row(
    400,
    "10",
    "BDA",
    "Error en validar Otc - No existe Otc vigente",
);

// S5, S6, S7, S16, S17, S19: reto and digital enrollment.
pub const RETO_NOT_FOUND: Fault = row(
    404,
    "NO FOUND",
    "BDA",
    "Indicates that no information is found for the filters sent in the query.",
);
pub const TX_DATA_INVALID: Fault = row(
    400,
    "20005",
    "RGN",
    "ERROR_ID: 39081 LOS DATOS DE LA TRANSACCION NO SON VALIDOS",
);
pub const TX_NOT_PARAMETERIZED: Fault = row(400, "100", "", "TX NO PARAMETRIZADA");
pub const ENROLLMENT_EXISTS: Fault = row(400, "00068", "OUD", "Usuario ya existe.");

// S8, S9: users and passwords (the policy rows live in `policy`).
pub const USER_EXISTS: Fault = row(400, "00068", "OUD", "El usuario ya existe");
pub const INVALID_CREDENTIALS: Fault = row(400, "1003", "OUD", "Usuario o clave enviado invalido");
pub const PASSWORD_LOCKED: Fault = row(
    400,
    "1005",
    "OUD",
    "ERROR: autenticacion-La clave se encuentra bloqueada",
);
pub const MISSING_FIELDS: Fault = row(400, "1016", "OUD", "Faltan campos obligatorios del usuario");
pub const CUSTOMER_NOT_FOUND: Fault = row(404, "51011", "SCL", "CLIENTE NO EXISTE BCSC");
pub const NOT_LINKABLE: Fault = row(400, "50002", "SCL", "PERSONA NO VINCULABLE");

// S10, S11: card PIN / CVV checks.
pub const NO_CLIENT_DATA: Fault = row(404, "00097", "OCP", "No se encontraron datos del cliente");
pub const INVALID_IDENT_TYPE: Fault = row(400, "45", "VAL", "Tipo de identificacion invalido");
pub const INVALID_IDENT_NUMBER: Fault = row(400, "14", "VAL", "Numero de identificacion invalido");
pub const NO_DEBIT_CARDS: Fault = row(
    400,
    "00402",
    "RGN",
    "El cliente no tiene tarjetas de débito",
);
pub const DEBIT_CARD_MISMATCH: Fault = row(
    400,
    "00403",
    "RGN",
    "El número de tarjeta no coincide con las tarjetas de débito",
);
pub const PIN_MISMATCH: Fault = row(
    400,
    "00301",
    "RGN",
    "La clave no coincide con el registrada",
);
pub const NO_CREDIT_CARDS: Fault = row(
    400,
    "00102",
    "RGN",
    "El cliente no tiene tarjetas de crédito",
);
pub const CREDIT_CARD_MISMATCH: Fault = row(
    404,
    "00103",
    "RGN",
    "El número de tarjeta no coincide con las tarjetas de crédito",
);
pub const CVV_MISMATCH: Fault = row(400, "00201", "RGN", "El CVV no coincide con el registrado");
pub const NO_EMAIL: Fault = row(400, "1002", "ADM", "Cliente no tiene correo registrado");
pub const NOT_LINKABLE_REGISTER: Fault = row(
    400,
    "1003",
    "ADM",
    "Un cliente no vinculable NO puede registrarse",
);
pub const NOT_LINKABLE_RECOVER: Fault = row(
    400,
    "1004",
    "ADM",
    "Un cliente no vinculable NO puede recuperar",
);
pub const NO_USER_TO_RECOVER: Fault =
    row(404, "00401", "RGN", "No se encontraron datos del cliente");
pub const BLOCKED_FOR_CHANNEL: Fault = row(500, "ZB", "STA", "CLIENT BLOCKED FOR THIS CHANNEL");

// S12, S18: withdrawal OTPs. 05621-05626 are sandbox codes: the spec names none.
pub const ACCOUNT_NOT_FOUND: Fault = row(400, "05620", "RGN", "NO EXISTE NMERO DE CUENTA");
pub const OTP_INVALID: Fault = row(400, "05621", "RGN", "OTP INVALIDA");
pub const OTP_EXPIRED: Fault = row(400, "05622", "RGN", "OTP VENCIDA");
pub const OTP_USED: Fault = row(400, "05623", "RGN", "OTP YA UTILIZADA");
pub const OTP_AMOUNT: Fault = row(400, "05624", "RGN", "VALOR NO CORRESPONDE A LA OTP");
pub const OTP_ATTEMPTS: Fault = row(400, "05625", "RGN", "NUMERO DE INTENTOS SUPERADO");
/// The spec's refusal of a query that finds nothing (S5-S7's tables).
pub const QUERY_NOT_FOUND: Fault = row(
    404,
    "NO FOUND",
    "BDA",
    "Indicates that no information is found for the filters sent in the query.",
);
pub const NO_TRANSACTION: Fault = row(404, "05626", "RGN", "NO EXISTE LA TRANSACCION");
