//! PSKC (RFC 6030), the XML seed files that token vendors (Yubico, Feitian,
//! HID, Token2, ...) ship, for `totpctl import-pskc`.
//!
//! Each `KeyPackage` is one token: its `Key` names the algorithm (HOTP or
//! TOTP, by the URI's last word), `AlgorithmParameters/ResponseFormat` the
//! digits (decimal only), `Suite` the hash (SHA1 unless it names SHA256 or
//! SHA512), and `Data` the secret, the counter and the time interval.
//! `DeviceInfo/SerialNo` is kept in the record. The owner is the
//! `UserId` of the key (or of the device), unless the admin maps serials to
//! accounts (`--map`), as vendors usually leave the owner out.
//!
//! Secrets come as `PlainValue` (base64) or `EncryptedValue`: AES-CBC
//! (128, 192 or 256 bits; the IV is the first block of `CipherValue`) under
//! a pre-shared key (`EncryptionKey/ds:KeyName`) or a key derived from a
//! password with PBKDF2-HMAC-SHA1 (`xenc11:DerivedKey`). An encrypted secret
//! must carry a `ValueMAC`: HMAC-SHA1 over the whole `CipherValue` with the
//! `MACMethod`'s `MACKey` (itself encrypted with the same key), or with the
//! encryption key when the file has no `MACKey` (as drafts of the RFC did).
//! The MAC is checked, in constant time, before anything is decrypted.
//!
//! Errors name the element and its line in the file, never a secret or a
//! key. Elements are matched by their local name: vendors disagree on the
//! prefixes and even the namespaces of the PBKDF2 parameters.

use super::batch::Token;
use super::csv::{check_serial, parse_algorithm};
use aes::cipher::{block_padding::Pkcs7, BlockModeDecrypt, KeyIvInit};
use hmac::{Hmac, KeyInit, Mac};
use roxmltree::{Document, Node};
use sha1::Sha1;
use totp_core::names::printable;
use totp_core::otp::{Algorithm, OtpType};
use totp_core::secret::SecretBytes;
use zeroize::Zeroizing;

/// How the admin unlocks an encrypted file.
pub enum Unlock {
    None,
    /// The pre-shared AES key (16, 24 or 32 bytes).
    Key(Zeroizing<Vec<u8>>),
    /// The password a PBKDF2 key is derived from.
    Password(Zeroizing<Vec<u8>>),
}

/// The most PBKDF2 rounds a file may ask for (a file is input, and a huge
/// count would make the import hang).
const MAX_ROUNDS: u32 = 10_000_000;

const AES_CBC: [(&str, usize); 3] = [
    ("http://www.w3.org/2001/04/xmlenc#aes128-cbc", 16),
    ("http://www.w3.org/2001/04/xmlenc#aes192-cbc", 24),
    ("http://www.w3.org/2001/04/xmlenc#aes256-cbc", 32),
];
const HMAC_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#hmac-sha1";

/// Who owns the token of a serial number (the `--map` file).
pub type OwnerMap<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Parse a PSKC file into tokens. `user_for` maps a serial number to an
/// account name (the `--map` file); without a map every key needs a UserId.
/// Returns the tokens and one note per key skipped because the map leaves
/// it out.
pub fn parse(
    text: &str,
    unlock: &Unlock,
    user_for: Option<OwnerMap<'_>>,
) -> Result<(Vec<Token>, Vec<String>), String> {
    let doc = Document::parse(text).map_err(|e| format!("not well-formed XML: {e}"))?;
    let line = |node: Node<'_, '_>| doc.text_pos_at(node.range().start).row as usize;
    let root = doc.root_element();
    if root.tag_name().name() != "KeyContainer" {
        return Err(format!(
            "line {}: the root element is <{}>, not a PSKC <KeyContainer>",
            line(root),
            printable(root.tag_name().name().as_bytes())
        ));
    }
    if let Some(version) = root.attribute("Version") {
        if version != "1.0" {
            return Err(format!(
                "line {}: KeyContainer Version {} (this reads 1.0)",
                line(root),
                printable(version.as_bytes())
            ));
        }
    }
    let keys = Keys::read(root, unlock, &line)?;
    let mut tokens = Vec::new();
    let mut notes = Vec::new();
    for package in children(root, "KeyPackage") {
        let n = line(package);
        let device = child(package, "DeviceInfo");
        let serial = device
            .and_then(|d| child(d, "SerialNo"))
            .map(|s| check_serial(&text_of(s)).map_err(|e| format!("line {}: {e}", line(s))))
            .transpose()?;
        let key =
            child(package, "Key").ok_or_else(|| format!("line {n}: KeyPackage without a <Key>"))?;
        let owner = child(key, "UserId")
            .or_else(|| device.and_then(|d| child(d, "UserId")))
            .map(text_of);
        let user = match user_for {
            Some(map) => match serial.as_deref().and_then(map) {
                Some(user) => user,
                None => {
                    notes.push(format!(
                        "line {n}: token {} is not in the map; skipped",
                        serial.as_deref().unwrap_or("without a serial number")
                    ));
                    continue;
                }
            },
            None => owner.ok_or_else(|| {
                format!(
                    "line {n}: token {} has no UserId; give --map FILE (lines serial,user)",
                    serial.as_deref().unwrap_or("without a serial number")
                )
            })?,
        };
        tokens.push(token(key, n, &user, serial, &keys, &line)?);
    }
    if tokens.is_empty() && notes.is_empty() {
        return Err("it holds no KeyPackage".into());
    }
    Ok((tokens, notes))
}

/// One `Key`.
fn token(
    key: Node<'_, '_>,
    n: usize,
    user: &str,
    serial: Option<String>,
    keys: &Keys,
    line: &dyn Fn(Node<'_, '_>) -> usize,
) -> Result<Token, String> {
    let uri = key.attribute("Algorithm").unwrap_or_default();
    let kind = match uri.rsplit([':', '#', '/']).next() {
        Some(word) if word.eq_ignore_ascii_case("hotp") => OtpType::Hotp,
        Some(word) if word.eq_ignore_ascii_case("totp") => OtpType::Totp,
        _ => {
            return Err(format!(
                "line {}: Key Algorithm '{}' is neither HOTP nor TOTP",
                line(key),
                printable(uri.as_bytes())
            ))
        }
    };
    let params = child(key, "AlgorithmParameters");
    let format = params.and_then(|p| child(p, "ResponseFormat"));
    let digits = match format {
        Some(f) => {
            if let Some(enc) = f.attribute("Encoding") {
                if enc != "DECIMAL" {
                    return Err(format!(
                        "line {}: ResponseFormat Encoding {} (only DECIMAL codes are supported)",
                        line(f),
                        printable(enc.as_bytes())
                    ));
                }
            }
            let length = f.attribute("Length").unwrap_or_default();
            totp_core::record::parse_digits(length)
                .map_err(|e| format!("line {}: ResponseFormat Length: {e}", line(f)))?
        }
        None => 6,
    };
    let algorithm = match params.and_then(|p| child(p, "Suite")) {
        Some(suite) => parse_algorithm(&text_of(suite))
            .map_err(|e| format!("line {}: Suite: {e}", line(suite)))?,
        None => Algorithm::SHA1,
    };
    let data =
        child(key, "Data").ok_or_else(|| format!("line {}: Key without <Data>", line(key)))?;
    let secret_node = child(data, "Secret")
        .ok_or_else(|| format!("line {}: Data without <Secret>", line(data)))?;
    let bytes = keys.value(secret_node, line)?;
    let secret = SecretBytes::from_bytes(bytes)
        .map_err(|e| format!("line {}: the {e}", line(secret_node)))?;
    let number = |name: &'static str| -> Result<Option<u64>, String> {
        let Some(node) = child(data, name) else {
            return Ok(None);
        };
        let plain = child(node, "PlainValue")
            .ok_or_else(|| format!("line {}: {name} must be a PlainValue", line(node)))?;
        text_of(plain)
            .parse::<u64>()
            .map(Some)
            .map_err(|_| format!("line {}: {name} is not a whole number", line(plain)))
    };
    let counter = number("Counter")?.unwrap_or(0);
    let period = number("TimeInterval")?.unwrap_or(30);
    if let Some(t0) = number("Time")? {
        if t0 != 0 {
            return Err(format!(
                "line {n}: the token counts time from {t0}, not from 0 (the Unix epoch)"
            ));
        }
    }
    let mut token = Token::new(
        n,
        user,
        kind,
        secret,
        (
            algorithm,
            digits,
            if kind == OtpType::Totp { period } else { 30 },
        ),
        if kind == OtpType::Hotp { counter } else { 0 },
        None,
    )?;
    token.serial = serial;
    Ok(token)
}

/// The file's encryption and MAC keys, unlocked.
struct Keys {
    encryption: Option<Zeroizing<Vec<u8>>>,
    mac: Option<Zeroizing<Vec<u8>>>,
}

impl Keys {
    fn read(
        root: Node<'_, '_>,
        unlock: &Unlock,
        line: &dyn Fn(Node<'_, '_>) -> usize,
    ) -> Result<Self, String> {
        let Some(info) = child(root, "EncryptionKey") else {
            return Ok(Self {
                encryption: None,
                mac: None,
            });
        };
        let encryption = match (descendant(info, "DerivedKey"), unlock) {
            (Some(derived), Unlock::Password(password)) => derive(derived, password, line)?,
            (Some(derived), _) => {
                let name = descendant(derived, "MasterKeyName").map(text_of);
                return Err(format!(
                    "line {}: the secrets are encrypted with a password{}; give it with \
                     --password-file FILE",
                    line(derived),
                    name.map(|n| format!(" ('{}')", shown(&n)))
                        .unwrap_or_default()
                ));
            }
            (None, Unlock::Key(key)) => Zeroizing::new(key.to_vec()),
            (None, _) => {
                let name = descendant(info, "KeyName").map(text_of);
                return Err(format!(
                    "line {}: the secrets are encrypted with a pre-shared key{}; give it (in hex) \
                     with --key-file FILE",
                    line(info),
                    name.map(|n| format!(" named '{}'", shown(&n)))
                        .unwrap_or_default()
                ));
            }
        };
        let mut keys = Self {
            encryption: Some(encryption),
            mac: None,
        };
        if let Some(method) = child(root, "MACMethod") {
            let algo = method.attribute("Algorithm").unwrap_or_default();
            if algo != HMAC_SHA1 {
                return Err(format!(
                    "line {}: MACMethod {} (only HMAC-SHA1 is supported)",
                    line(method),
                    printable(algo.as_bytes())
                ));
            }
            if let Some(mac_key) = child(method, "MACKey") {
                // The MAC key is encrypted but carries no MAC of its own: a
                // wrong key shows as bad padding here or a wrong MAC below.
                keys.mac = Some(keys.decrypt(mac_key, line)?);
            }
        }
        Ok(keys)
    }

    /// The bytes of a `PlainValue` or a MAC-checked `EncryptedValue` under
    /// `node` (a `Secret`).
    fn value(
        &self,
        node: Node<'_, '_>,
        line: &dyn Fn(Node<'_, '_>) -> usize,
    ) -> Result<Zeroizing<Vec<u8>>, String> {
        if let Some(plain) = child(node, "PlainValue") {
            return base64(plain, line);
        }
        let Some(encrypted) = child(node, "EncryptedValue") else {
            return Err(format!(
                "line {}: {} has neither PlainValue nor EncryptedValue",
                line(node),
                node.tag_name().name()
            ));
        };
        let Some(mac_key) = self.mac.as_ref().or(self.encryption.as_ref()) else {
            return Err(format!(
                "line {}: an EncryptedValue, but the file has no EncryptionKey",
                line(encrypted)
            ));
        };
        let mac = child(node, "ValueMAC").ok_or_else(|| {
            format!(
                "line {}: an EncryptedValue without a ValueMAC, which cannot be checked",
                line(encrypted)
            )
        })?;
        let tag = base64(mac, line)?;
        let cipher = cipher_value(encrypted, line)?;
        let mut check = <Hmac<Sha1> as KeyInit>::new_from_slice(mac_key)
            .map_err(|_| format!("line {}: the MAC key cannot be used", line(mac)))?;
        check.update(&cipher);
        check.verify_slice(&tag).map_err(|_| {
            format!(
                "line {}: the ValueMAC does not match: the key or password is wrong, or the file \
                 was changed",
                line(mac)
            )
        })?;
        self.decrypt(encrypted, line)
    }

    /// Decrypt the `CipherValue` under `node` (an `EncryptedValue` or a
    /// `MACKey`) with the encryption key.
    fn decrypt(
        &self,
        node: Node<'_, '_>,
        line: &dyn Fn(Node<'_, '_>) -> usize,
    ) -> Result<Zeroizing<Vec<u8>>, String> {
        let Some(key) = &self.encryption else {
            return Err(format!(
                "line {}: no EncryptionKey to decrypt with",
                line(node)
            ));
        };
        let method = child(node, "EncryptionMethod")
            .and_then(|m| m.attribute("Algorithm"))
            .unwrap_or_default();
        let Some((_, size)) = AES_CBC.iter().find(|(uri, _)| *uri == method) else {
            return Err(format!(
                "line {}: EncryptionMethod '{}' (AES-128, -192 or -256 in CBC mode is supported)",
                line(node),
                printable(method.as_bytes())
            ));
        };
        if key.len() != *size {
            return Err(format!(
                "line {}: the key has {} bytes and {} needs {size}",
                line(node),
                key.len(),
                printable(method.as_bytes())
            ));
        }
        let data = cipher_value(node, line)?;
        if data.len() < 32 || data.len() % 16 != 0 {
            return Err(format!(
                "line {}: the CipherValue is not an IV and whole AES blocks",
                line(node)
            ));
        }
        let (iv, body) = data.split_at(16);
        let mut buf = Zeroizing::new(body.to_vec());
        let bad = || {
            format!(
                "line {}: cannot decrypt: the key or password is wrong",
                line(node)
            )
        };
        let len = match size {
            16 => cbc::Decryptor::<aes::Aes128>::new_from_slices(key, iv)
                .map_err(|_| bad())?
                .decrypt_padded::<Pkcs7>(&mut buf)
                .map_err(|_| bad())?
                .len(),
            24 => cbc::Decryptor::<aes::Aes192>::new_from_slices(key, iv)
                .map_err(|_| bad())?
                .decrypt_padded::<Pkcs7>(&mut buf)
                .map_err(|_| bad())?
                .len(),
            _ => cbc::Decryptor::<aes::Aes256>::new_from_slices(key, iv)
                .map_err(|_| bad())?
                .decrypt_padded::<Pkcs7>(&mut buf)
                .map_err(|_| bad())?
                .len(),
        };
        buf.truncate(len);
        Ok(buf)
    }
}

/// The key PBKDF2 derives from `password` as `derived` (a `DerivedKey`) says.
fn derive(
    derived: Node<'_, '_>,
    password: &[u8],
    line: &dyn Fn(Node<'_, '_>) -> usize,
) -> Result<Zeroizing<Vec<u8>>, String> {
    let method = descendant(derived, "KeyDerivationMethod").ok_or_else(|| {
        format!(
            "line {}: DerivedKey without KeyDerivationMethod",
            line(derived)
        )
    })?;
    let algo = method.attribute("Algorithm").unwrap_or_default();
    if !algo.ends_with("#pbkdf2") {
        return Err(format!(
            "line {}: key derivation '{}' (only PBKDF2 is supported)",
            line(method),
            printable(algo.as_bytes())
        ));
    }
    let params = descendant(method, "PBKDF2-params")
        .ok_or_else(|| format!("line {}: PBKDF2 without PBKDF2-params", line(method)))?;
    let salt = descendant(params, "Specified")
        .ok_or_else(|| format!("line {}: PBKDF2 without a Salt", line(params)))?;
    let salt = base64(salt, line)?;
    let number = |name: &'static str| -> Result<u32, String> {
        let node = descendant(params, name)
            .ok_or_else(|| format!("line {}: PBKDF2 without {name}", line(params)))?;
        text_of(node)
            .parse::<u32>()
            .map_err(|_| format!("line {}: {name} is not a whole number", line(node)))
    };
    let rounds = number("IterationCount")?;
    let length = number("KeyLength")?;
    if rounds == 0 || rounds > MAX_ROUNDS {
        return Err(format!(
            "line {}: IterationCount must be 1 to {MAX_ROUNDS}",
            line(params)
        ));
    }
    if !matches!(length, 16 | 24 | 32) {
        return Err(format!(
            "line {}: KeyLength {length} (AES keys have 16, 24 or 32 bytes)",
            line(params)
        ));
    }
    if let Some(prf) = descendant(params, "PRF") {
        let algo = prf.attribute("Algorithm").unwrap_or_default();
        if !algo.is_empty() && !algo.ends_with("hmac-sha1") {
            return Err(format!(
                "line {}: PBKDF2 PRF '{}' (only HMAC-SHA1 is supported)",
                line(prf),
                printable(algo.as_bytes())
            ));
        }
    }
    let mut key = Zeroizing::new(vec![0u8; length as usize]);
    pbkdf2::pbkdf2_hmac::<Sha1>(password, &salt, rounds, &mut key);
    Ok(key)
}

/// The decoded `CipherData/CipherValue` under `node`.
fn cipher_value(
    node: Node<'_, '_>,
    line: &dyn Fn(Node<'_, '_>) -> usize,
) -> Result<Zeroizing<Vec<u8>>, String> {
    let value = child(node, "CipherData")
        .and_then(|d| child(d, "CipherValue"))
        .ok_or_else(|| format!("line {}: no CipherData/CipherValue", line(node)))?;
    base64(value, line)
}

/// The base64 text of `node` (blanks and line breaks allowed), decoded into
/// a buffer that is wiped on drop.
fn base64(
    node: Node<'_, '_>,
    line: &dyn Fn(Node<'_, '_>) -> usize,
) -> Result<Zeroizing<Vec<u8>>, String> {
    let text: Zeroizing<Vec<u8>> = Zeroizing::new(
        node.text()
            .unwrap_or_default()
            .bytes()
            .filter(|b| !b.is_ascii_whitespace())
            .collect(),
    );
    let bad = || {
        format!(
            "line {}: {} is not valid base64",
            line(node),
            node.tag_name().name()
        )
    };
    let engine = &data_encoding::BASE64;
    let size = engine.decode_len(text.len()).map_err(|_| bad())?;
    let mut out = Zeroizing::new(vec![0u8; size]);
    let len = engine.decode_mut(&text, &mut out).map_err(|_| bad())?;
    out.truncate(len);
    Ok(out)
}

fn children<'a, 'input>(
    node: Node<'a, 'input>,
    name: &'static str,
) -> impl Iterator<Item = Node<'a, 'input>> {
    node.children()
        .filter(move |c| c.is_element() && c.tag_name().name() == name)
}

fn child<'a, 'input>(node: Node<'a, 'input>, name: &'static str) -> Option<Node<'a, 'input>> {
    children(node, name).next()
}

fn descendant<'a, 'input>(node: Node<'a, 'input>, name: &'static str) -> Option<Node<'a, 'input>> {
    node.descendants()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

/// A name from the file for a message: control characters become `?`.
fn shown(text: &str) -> String {
    text.chars()
        .take(64)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// The trimmed text of an element that holds no secret.
fn text_of(node: Node<'_, '_>) -> String {
    node.text().unwrap_or_default().trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6030, figure 5: a plain HOTP secret.
    const FIGURE_5: &str = r##"<?xml version="1.0" encoding="UTF-8"?>
<KeyContainer Version="1.0" Id="exampleID1" xmlns="urn:ietf:params:xml:ns:keyprov:pskc">
  <KeyPackage>
    <DeviceInfo>
      <Manufacturer>Manufacturer</Manufacturer>
      <SerialNo>987654321</SerialNo>
      <UserId>DC=example-bank,DC=net</UserId>
    </DeviceInfo>
    <CryptoModuleInfo><Id>CM_ID_001</Id></CryptoModuleInfo>
    <Key Id="12345678" Algorithm="urn:ietf:params:xml:ns:keyprov:pskc:hotp">
      <Issuer>Issuer</Issuer>
      <AlgorithmParameters>
        <ResponseFormat Length="8" Encoding="DECIMAL"/>
      </AlgorithmParameters>
      <Data>
        <Secret>
          <PlainValue>MTIzNDU2Nzg5MDEyMzQ1Njc4OTA=
          </PlainValue>
        </Secret>
        <Counter><PlainValue>0</PlainValue></Counter>
      </Data>
      <UserId>UID=jsmith,DC=example-bank,DC=net</UserId>
    </Key>
  </KeyPackage>
</KeyContainer>"##;

    /// RFC 6030, figure 6: AES-128-CBC under a pre-shared key, HMAC-SHA1.
    pub const FIGURE_6: &str = r##"<?xml version="1.0" encoding="UTF-8"?>
<KeyContainer Version="1.0" xmlns="urn:ietf:params:xml:ns:keyprov:pskc"
    xmlns:ds="http://www.w3.org/2000/09/xmldsig#" xmlns:xenc="http://www.w3.org/2001/04/xmlenc#">
  <EncryptionKey><ds:KeyName>Pre-shared-key</ds:KeyName></EncryptionKey>
  <MACMethod Algorithm="http://www.w3.org/2000/09/xmldsig#hmac-sha1">
    <MACKey>
      <xenc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/>
      <xenc:CipherData>
        <xenc:CipherValue>
ESIzRFVmd4iZABEiM0RVZgKn6WjLaTC1sbeBMSvIhRejN9vJa2BOlSaMrR7I5wSX
        </xenc:CipherValue>
      </xenc:CipherData>
    </MACKey>
  </MACMethod>
  <KeyPackage>
    <DeviceInfo>
      <Manufacturer>Manufacturer</Manufacturer>
      <SerialNo>987654321</SerialNo>
    </DeviceInfo>
    <CryptoModuleInfo><Id>CM_ID_001</Id></CryptoModuleInfo>
    <Key Id="12345678" Algorithm="urn:ietf:params:xml:ns:keyprov:pskc:hotp">
      <Issuer>Issuer</Issuer>
      <AlgorithmParameters><ResponseFormat Length="8" Encoding="DECIMAL"/></AlgorithmParameters>
      <Data>
        <Secret>
          <EncryptedValue>
            <xenc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/>
            <xenc:CipherData>
              <xenc:CipherValue>
AAECAwQFBgcICQoLDA0OD+cIHItlB3Wra1DUpxVvOx2lef1VmNPCMl8jwZqIUqGv
              </xenc:CipherValue>
            </xenc:CipherData>
          </EncryptedValue>
          <ValueMAC>Su+NvtQfmvfJzF6bmQiJqoLRExc=
          </ValueMAC>
        </Secret>
        <Counter><PlainValue>0</PlainValue></Counter>
      </Data>
    </Key>
  </KeyPackage>
</KeyContainer>"##;

    /// RFC 6030, figure 7: a key derived from the password "qwerty" (PBKDF2).
    const FIGURE_7: &str = r##"<?xml version="1.0" encoding="UTF-8"?>
<pskc:KeyContainer xmlns:pskc="urn:ietf:params:xml:ns:keyprov:pskc"
    xmlns:xenc11="http://www.w3.org/2009/xmlenc11#"
    xmlns:pkcs5="http://www.rsasecurity.com/rsalabs/pkcs/schemas/pkcs-5v2-0#"
    xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" Version="1.0">
  <pskc:EncryptionKey>
    <xenc11:DerivedKey>
      <xenc11:KeyDerivationMethod
          Algorithm="http://www.rsasecurity.com/rsalabs/pkcs/schemas/pkcs-5v2-0#pbkdf2">
        <pkcs5:PBKDF2-params>
          <Salt><Specified>Ej7/PEpyEpw=</Specified></Salt>
          <IterationCount>1000</IterationCount>
          <KeyLength>16</KeyLength>
          <PRF/>
        </pkcs5:PBKDF2-params>
      </xenc11:KeyDerivationMethod>
      <xenc:ReferenceList><xenc:DataReference URI="#ED"/></xenc:ReferenceList>
      <xenc11:MasterKeyName>My Password 1</xenc11:MasterKeyName>
    </xenc11:DerivedKey>
  </pskc:EncryptionKey>
  <pskc:MACMethod Algorithm="http://www.w3.org/2000/09/xmldsig#hmac-sha1">
    <pskc:MACKey>
      <xenc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/>
      <xenc:CipherData>
        <xenc:CipherValue>
2GTTnLwM3I4e5IO5FkufoOEiOhNj91fhKRQBtBJYluUDsPOLTfUvoU2dStyOwYZx
        </xenc:CipherValue>
      </xenc:CipherData>
    </pskc:MACKey>
  </pskc:MACMethod>
  <pskc:KeyPackage>
    <pskc:DeviceInfo>
      <pskc:Manufacturer>TokenVendorAcme</pskc:Manufacturer>
      <pskc:SerialNo>987654321</pskc:SerialNo>
    </pskc:DeviceInfo>
    <pskc:CryptoModuleInfo><pskc:Id>CM_ID_001</pskc:Id></pskc:CryptoModuleInfo>
    <pskc:Key Algorithm="urn:ietf:params:xml:ns:keyprov:pskc:hotp" Id="123456">
      <pskc:Issuer>Example-Issuer</pskc:Issuer>
      <pskc:AlgorithmParameters>
        <pskc:ResponseFormat Length="8" Encoding="DECIMAL"/>
      </pskc:AlgorithmParameters>
      <pskc:Data>
        <pskc:Secret>
          <pskc:EncryptedValue Id="ED">
            <xenc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/>
            <xenc:CipherData>
              <xenc:CipherValue>
oTvo+S22nsmS2Z/RtcoF8Hfh+jzMe0RkiafpoDpnoZTjPYZu6V+A4aEn032yCr4f
              </xenc:CipherValue>
            </xenc:CipherData>
          </pskc:EncryptedValue>
          <pskc:ValueMAC>LP6xMvjtypbfT9PdkJhBZ+D6O4w=
          </pskc:ValueMAC>
        </pskc:Secret>
      </pskc:Data>
    </pskc:Key>
  </pskc:KeyPackage>
</pskc:KeyContainer>"##;

    const RFC_SECRET: &[u8] = b"12345678901234567890";

    fn map(serial: &str) -> Option<String> {
        (serial == "987654321").then(|| "jsmith".to_owned())
    }

    fn one(text: &str, unlock: &Unlock) -> Result<Token, String> {
        let (mut tokens, notes) = parse(text, unlock, Some(&map))?;
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(tokens.len(), 1);
        Ok(tokens.remove(0))
    }

    fn psk() -> Unlock {
        Unlock::Key(Zeroizing::new(
            (0..16u8)
                .map(|i| [0x12, 0x34, 0x56, 0x78, 0x90][usize::from(i) % 5])
                .collect(),
        ))
    }

    #[test]
    fn the_rfc_examples() {
        for (text, unlock) in [
            (FIGURE_5, Unlock::None),
            (FIGURE_6, psk()),
            (
                FIGURE_7,
                Unlock::Password(Zeroizing::new(b"qwerty".to_vec())),
            ),
        ] {
            let token = one(text, &unlock).unwrap();
            assert_eq!(token.secret.as_bytes(), RFC_SECRET);
            assert_eq!(
                (token.kind, token.params.digits, token.counter),
                (OtpType::Hotp, 8, 0)
            );
            assert_eq!(token.serial.as_deref(), Some("987654321"));
            assert_eq!(token.user, "jsmith");
        }
    }

    #[test]
    fn wrong_keys_and_missing_keys_are_named_and_nothing_leaks() {
        let wrong_psk = Unlock::Key(Zeroizing::new(vec![0x11; 16]));
        let wrong_password = Unlock::Password(Zeroizing::new(b"azerty".to_vec()));
        for (text, unlock, expected) in [
            (
                FIGURE_6,
                Unlock::None,
                "pre-shared key named 'Pre-shared-key'; give it",
            ),
            (FIGURE_6, wrong_psk, "the key or password is wrong"),
            (FIGURE_7, Unlock::None, "password ('My Password 1')"),
            (FIGURE_7, wrong_password, "the key or password is wrong"),
            (FIGURE_5, Unlock::None, ""),
        ] {
            let result = parse(text, &unlock, None);
            let err = match result {
                Ok(_) => String::new(),
                Err(e) => e,
            };
            if expected.is_empty() {
                // Figure 5 without a map: the DN in UserId is taken as is,
                // and fails later as a login name; no error here.
                continue;
            }
            assert!(err.contains(expected), "{err}");
            assert!(err.starts_with("line "), "{err}");
            assert!(!err.contains("MTIz") && !err.contains("qwerty"), "{err}");
        }
        // A changed ciphertext fails the MAC before anything is decrypted.
        let tampered = FIGURE_6.replace("AAECAwQFBgcICQoLDA0OD+cI", "AAECAwQFBgcICQoLDA0OD+cJ");
        let err = parse(&tampered, &psk(), Some(&map))
            .err()
            .unwrap_or_default();
        assert!(err.contains("ValueMAC does not match"), "{err}");
        // No MAC at all: refused.
        let unmacced = FIGURE_6.replace(
            "<ValueMAC>Su+NvtQfmvfJzF6bmQiJqoLRExc=\n          </ValueMAC>",
            "",
        );
        let err = parse(&unmacced, &psk(), Some(&map))
            .err()
            .unwrap_or_default();
        assert!(err.contains("without a ValueMAC"), "{err}");
    }

    #[test]
    fn unmapped_tokens_are_skipped_with_a_note() {
        let nobody = |_: &str| None;
        let (tokens, notes) = parse(FIGURE_5, &Unlock::None, Some(&nobody)).unwrap();
        assert!(tokens.is_empty());
        assert_eq!(
            notes,
            vec!["line 3: token 987654321 is not in the map; skipped"]
        );
    }

    #[test]
    fn bad_elements_name_their_line() {
        for (from, to, expected) in [
            (
                "Length=\"8\"",
                "Length=\"7\"",
                "line 13: ResponseFormat Length",
            ),
            ("pskc:hotp\">", "pskc:ocra\">", "line 10: Key Algorithm"),
            (
                "<PlainValue>0</PlainValue>",
                "<PlainValue>x</PlainValue>",
                "Counter is not",
            ),
            (
                "MTIzNDU2Nzg5MDEyMzQ1Njc4OTA=",
                "MTIz!",
                "line 17: PlainValue is not valid base64",
            ),
            ("KeyContainer", "Container", "not a PSKC"),
        ] {
            let text = FIGURE_5.replace(from, to);
            let err = parse(&text, &Unlock::None, Some(&map))
                .err()
                .unwrap_or_default();
            assert!(err.contains(expected), "{from}: {err}");
        }
    }
}
