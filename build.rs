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
    let secrets = secret_fields(&descriptors)?;
    std::fs::write(out_dir.join("secrets.rs"), redacting(&secrets))?;

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
        .skip_debug(secrets.iter().map(|(message, _)| format!(".{message}")))
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

/// A message by full name and its secret fields.
type Secrets = Vec<(String, Vec<String>)>;

/// What marks a field secret in the contracts: its comment begins with it.
const SECRET_MARK: &str = "Secret:";

/// Each message of `proto/pasarela` with a field whose comment begins `Secret:`, by full
/// name, and those fields: the contracts say which fields are secret, once.
fn secret_fields(
    descriptors: &prost_types::FileDescriptorSet,
) -> Result<Secrets, Box<dyn std::error::Error>> {
    let mut secrets = Vec::new();
    for file in &descriptors.file {
        if !file.package().starts_with("pasarela.") {
            continue;
        }
        // A field's comment above it, or after it on its line.
        let comments: Vec<(&[i32], &str)> = file
            .source_code_info
            .iter()
            .flat_map(|info| &info.location)
            .flat_map(|location| {
                let path = location.path.as_slice();
                [
                    (path, location.leading_comments()),
                    (path, location.trailing_comments()),
                ]
            })
            .collect();
        let marked = |path: &[i32]| {
            comments
                .iter()
                .any(|(at, comment)| *at == path && comment.trim_start().starts_with(SECRET_MARK))
        };
        for (m, message) in (0_i32..).zip(&file.message_type) {
            // Messages nested in others would need their Rust module path below.
            for (n, nested) in (0_i32..).zip(&message.nested_type) {
                for f in (0_i32..).take(nested.field.len()) {
                    if marked(&[4, m, 3, n, 2, f]) {
                        return Err(
                            format!("{}: a secret in a nested message", nested.name()).into()
                        );
                    }
                }
            }
            let mut fields = Vec::new();
            for (f, field) in (0_i32..).zip(&message.field) {
                if !marked(&[4, m, 2, f]) {
                    continue;
                }
                // Redaction writes a string in its place.
                let string = field.r#type() == prost_types::field_descriptor_proto::Type::String
                    && field.label() != prost_types::field_descriptor_proto::Label::Repeated;
                if !string {
                    return Err(format!(
                        "{}.{}: a secret that is not one string",
                        message.name(),
                        field.name()
                    )
                    .into());
                }
                fields.push(field.name().to_owned());
            }
            if !fields.is_empty() {
                secrets.push((format!("{}.{}", file.package(), message.name()), fields));
            }
        }
    }
    Ok(secrets)
}

/// `SECRET_FIELDS` and the redacting `Debug` of each message that has one, for
/// src/redacted.rs.
fn redacting(secrets: &[(String, Vec<String>)]) -> String {
    let mut out = String::from(
        "/// The secret fields of each message, as its proto comments mark them (`Secret:`).\n\
         const SECRET_FIELDS: &[(&str, &[&str])] = &[\n",
    );
    for (message, fields) in secrets {
        out.push_str(&format!("    ({message:?}, &{fields:?}),\n"));
    }
    out.push_str("];\n");
    for (message, _) in secrets {
        // `pasarela.security.v1.ValidateOtcRequest` is `crate::security::v1::ValidateOtcRequest`.
        let path = message.trim_start_matches("pasarela.").replace('.', "::");
        out.push_str(&format!(
            "impl fmt::Debug for crate::{path} {{\n    \
             fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {{\n        \
             redacted(self, {message:?}, f)\n    }}\n}}\n"
        ));
    }
    out
}

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
