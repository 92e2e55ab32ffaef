//! Compiles `proto/` into Rust types and an encoded descriptor set (for reflection)
//! with protox, so no system `protoc` is needed.

use std::path::{Path, PathBuf};

use prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new("proto");
    let mut files = Vec::new();
    collect_protos(root, &mut files)?;
    files.sort();
    println!("cargo:rerun-if-changed={}", root.display());

    let descriptors = protox::compile(&files, [root])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("pasarela_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    std::fs::write(out_dir.join("methods.rs"), methods(&descriptors))?;

    // `google.rpc` is in the descriptor set only so that reflection clients (grpcurl) can
    // decode error details; its Rust types come from tonic-types.
    let mut generated = descriptors;
    generated
        .file
        .retain(|file| !file.package().starts_with("google.rpc"));
    // Messages that carry a secret get a redacting `Debug` (src/redacted.rs), so that no
    // `{:?}` of a request, in a log or a panic, ever prints one.
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .skip_debug(REDACTED.iter().map(|name| format!(".{name}")))
        .compile_fds(generated)?;
    Ok(())
}

/// One const per service of `proto/pasarela`, its methods' names in snake case as declared
/// (`SecurityService` -> `SECURITY_SERVICE`, `GenerateOtcV3` -> `generate_otc_v3`): the
/// operations a service's metrics and settings know, read from the contract, not a list.
fn methods(descriptors: &prost_types::FileDescriptorSet) -> String {
    let mut out = String::new();
    let services = descriptors
        .file
        .iter()
        .filter(|file| file.package().starts_with("pasarela."))
        .flat_map(|file| file.service.iter().map(move |service| (file, service)));
    for (file, service) in services {
        let names: Vec<String> = service
            .method
            .iter()
            .map(|method| format!("{:?}", snake_case(method.name())))
            .collect();
        out.push_str(&format!(
            "/// `{}.{}`'s methods.\npub const {}: &[&str] = &[{}];\n",
            file.package(),
            service.name(),
            snake_case(service.name()).to_uppercase(),
            names.join(", ")
        ));
    }
    out
}

fn snake_case(name: &str) -> String {
    let mut snake = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            snake.push('_');
        }
        snake.push(c.to_ascii_lowercase());
    }
    snake
}

/// The messages with a field the contracts mark secret; src/redacted.rs names the fields.
const REDACTED: &[&str] = &[
    "pasarela.bureau.v1.GetPasswordExpirationRequest",
    "pasarela.recurring_payments.v1.RequestSubscriptionResponse",
    "pasarela.recurring_payments.v1.ActivateSubscriptionRequest",
    "pasarela.security.v1.ValidateOtcRequest",
    "pasarela.security.v1.EnrollDigitalUserRequest",
    "pasarela.security.v1.ChangePasswordRequest",
    "pasarela.security.v1.CreateUserRequest",
    "pasarela.security.v1.ValidateEnrollmentCardRequest",
    "pasarela.security.v1.ValidatePasswordRecoveryRequest",
    "pasarela.security.v1.RequestWithdrawalOtpResponse",
    "pasarela.security.v1.ChannelAnswer",
    "pasarela.security.v1.WithdrawWithOtpRequest",
    "pasarela.security.v1.QuestionAnswer",
];

fn collect_protos(dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_protos(&path, files)?;
        } else if path.extension().is_some_and(|ext| ext == "proto") {
            files.push(path);
        }
    }
    Ok(())
}
