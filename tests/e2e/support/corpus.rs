//! A corpus of bad input generated from the contracts: every RPC, every string field
//! (through nested messages), the values each field's rules forbid, encoded by hand so that
//! a request can carry what a typed client would refuse to build, and sent raw.

use std::collections::HashMap;

use prost::Message as _;
use prost::bytes::{Buf as _, BufMut as _};
use prost_types::field_descriptor_proto::Type;
use prost_types::{DescriptorProto, FileDescriptorSet};
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

use super::{Bearer, TestApp};

/// One RPC of the contracts: its path and its request message's fully qualified name.
pub struct Rpc {
    pub path: String,
    pub input: String,
}

/// A string field of a request, reached through nested messages.
#[derive(Clone)]
pub struct StringField {
    /// Field numbers from the request down to the string.
    pub numbers: Vec<u32>,
    /// Dotted proto names, as `BadRequest` names fields (`wallet.holder.number`).
    pub name: String,
    /// The contract's comment on the field.
    pub comment: String,
}

/// Every message of the contracts by fully qualified name, with its comments by field.
pub struct Contracts {
    pub messages: HashMap<String, (DescriptorProto, Vec<String>)>,
    pub rpcs: Vec<Rpc>,
}

impl Contracts {
    pub fn load() -> Contracts {
        let set = FileDescriptorSet::decode(pasarela::FILE_DESCRIPTOR_SET).expect("descriptors");
        let mut contracts = Contracts {
            messages: HashMap::new(),
            rpcs: Vec::new(),
        };
        for file in set
            .file
            .iter()
            .filter(|f| f.package().starts_with("pasarela."))
        {
            let comments = field_comments(file);
            for (index, message) in file.message_type.iter().enumerate() {
                let prefix = format!(".{}", file.package());
                contracts.add_message(&prefix, message, &[4, index as i32], &comments);
            }
            for service in &file.service {
                for method in &service.method {
                    contracts.rpcs.push(Rpc {
                        path: format!("/{}.{}/{}", file.package(), service.name(), method.name()),
                        input: method.input_type().to_owned(),
                    });
                }
            }
        }
        contracts
    }

    pub fn add_message(
        &mut self,
        prefix: &str,
        message: &DescriptorProto,
        location: &[i32],
        comments: &HashMap<Vec<i32>, String>,
    ) {
        let name = format!("{prefix}.{}", message.name());
        let field_comments = (0..message.field.len())
            .map(|i| {
                let path = [location, &[2, i as i32]].concat();
                comments.get(&path).cloned().unwrap_or_default()
            })
            .collect();
        for (index, nested) in message.nested_type.iter().enumerate() {
            let path = [location, &[3, index as i32]].concat();
            self.add_message(&name, nested, &path, comments);
        }
        self.messages
            .insert(name, (message.clone(), field_comments));
    }

    /// The string fields of `message`, through nested messages (the well-known Google
    /// types hold none).
    pub fn string_fields(&self, message: &str) -> Vec<StringField> {
        let mut found = Vec::new();
        self.walk(message, &[], "", &mut found);
        found
    }

    pub fn walk(&self, message: &str, numbers: &[u32], prefix: &str, found: &mut Vec<StringField>) {
        let Some((descriptor, comments)) = self.messages.get(message) else {
            return;
        };
        if numbers.len() > 4 {
            return;
        }
        for (field, comment) in descriptor.field.iter().zip(comments) {
            let numbers = [numbers, &[field.number() as u32]].concat();
            let name = format!("{prefix}{}", field.name());
            match field.r#type() {
                Type::String => found.push(StringField {
                    numbers,
                    name,
                    comment: comment.clone(),
                }),
                Type::Message => self.walk(field.type_name(), &numbers, &format!("{name}."), found),
                _ => {}
            }
        }
    }
}

/// Leading comments of a file by their source location path.
pub fn field_comments(file: &prost_types::FileDescriptorProto) -> HashMap<Vec<i32>, String> {
    file.source_code_info
        .iter()
        .flat_map(|info| &info.location)
        .map(|location| {
            (
                location.path.clone(),
                location.leading_comments().to_owned(),
            )
        })
        .collect()
}

/// A request whose only content is `value` in the string field at `numbers`.
pub fn request_with(numbers: &[u32], value: &[u8]) -> Vec<u8> {
    numbers.iter().rev().fold(value.to_vec(), |inner, &number| {
        let mut outer = Vec::with_capacity(inner.len() + 8);
        put_varint(&mut outer, u64::from((number << 3) | 2));
        put_varint(&mut outer, inner.len() as u64);
        outer.extend(inner);
        outer
    })
}

pub fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// A value breaking the pattern a contract comment describes, if it describes one.
const WRONG_PATTERNS: &[(&str, &str)] = &[
    ("UUID", "not-a-uuid"),
    ("hex pairs", "11-16-17-81-41-T7"),
    ("printable ASCII", "clave-ñandú"),
    ("letters or", "ab-12"),
    ("alphanumerics", "ab-12"),
    ("digits", "12a45"),
    ("ISO 4217", "C0P"),
];

pub fn wrong_pattern(comment: &str) -> Option<&'static str> {
    WRONG_PATTERNS
        .iter()
        .find(|(words, _)| comment.contains(words))
        .map(|(_, value)| *value)
}

/// The invalid values every string field is tried with.
pub fn mutations(field: &StringField) -> Vec<(&'static str, Vec<u8>)> {
    let mut values = vec![
        ("control characters", b"ab\x01c\nd".to_vec()),
        ("too long", vec![b'7'; 10_000]),
    ];
    if let Some(wrong) = wrong_pattern(&field.comment) {
        values.push(("wrong pattern", wrong.as_bytes().to_vec()));
    }
    values
}

/// A message passed through untouched, so that the tests can send bytes a typed client
/// never would (invalid UTF-8, oversized messages).
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

#[derive(Debug)]
pub struct RawEncoder;

#[derive(Debug)]
pub struct RawDecoder;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

impl Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

/// Sends `body` as the request of the RPC at `path`, over HTTP/2 as any gRPC client.
pub async fn raw_call(
    app: &TestApp,
    token: &Bearer,
    path: &str,
    body: Vec<u8>,
) -> Result<(), Status> {
    let mut grpc = tonic::client::Grpc::new(app.channel());
    grpc.ready()
        .await
        .map_err(|error| Status::unavailable(error.to_string()))?;
    let mut request = tonic::Request::new(body);
    request
        .metadata_mut()
        .insert("authorization", token.0.clone());
    let path = tonic::codegen::http::uri::PathAndQuery::try_from(path).expect("method path");
    grpc.unary(request, path, RawCodec).await.map(drop)
}
