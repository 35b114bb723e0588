#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Tests of `sealwire_transport::token`: every rejection rule, key rings and key files, and
//! compatibility with a third-party JWT library.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
use sealwire_transport::token::{
    BearerToken, Claims, TokenError, TokenKey, TokenKeys, TokenVerifier, issue,
};
use sha2::Sha256;

const NOW: u64 = 1_750_000_000;
const MAILBOX: [u8; 32] = [0xab; 32];
/// A recognisable test secret, so that leaks are easy to spot.
const SECRET: &[u8] = b"SECRET-SECRET-SECRET-SECRET-SECRET-1";

fn key(kid: &str) -> TokenKey {
    let mut secret = SECRET.to_vec();
    secret.extend_from_slice(kid.as_bytes());
    TokenKey::new(kid, secret).unwrap()
}

fn verifier() -> TokenVerifier {
    TokenVerifier::new(TokenKeys::new(vec![key("k1")]).unwrap())
}

fn claims() -> Claims {
    Claims::new(NOW + 600)
}

/// Signs arbitrary header and payload JSON with HMAC-SHA256 under `key("k1")`.
fn sign_raw(header: &str, payload: &str) -> String {
    let mut secret = SECRET.to_vec();
    secret.extend_from_slice(b"k1");
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(&secret).unwrap();
    mac.update(input.as_bytes());
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

fn check(token: &str) -> Result<Claims, TokenError> {
    verifier().verify(token, NOW, &MAILBOX)
}

/// Replaces the character at `index` with a different base64url character.
fn flip_char(token: &str, index: usize) -> String {
    let mut bytes = token.as_bytes().to_vec();
    bytes[index] = if bytes[index] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

#[test]
fn round_trip() {
    let claims = Claims {
        nbf: Some(NOW - 5),
        iat: Some(NOW - 5),
        sub: Some("user-1".into()),
        aud: Some("relay".into()),
        iss: Some("backend".into()),
        sealwire_mailbox: Some("ab".repeat(32)),
        ..claims()
    };
    let token = issue(&key("k1"), &claims);
    let v = verifier().with_audience("relay").with_issuer("backend");
    assert_eq!(v.verify(&token, NOW, &MAILBOX), Ok(claims));
    let header = URL_SAFE_NO_PAD
        .decode(token.split('.').next().unwrap())
        .unwrap();
    assert_eq!(header, br#"{"alg":"HS256","kid":"k1","typ":"JWT"}"#);
}

#[test]
fn signed_raw_helper_matches_issue() {
    // Guards the tests below: a token built by `sign_raw` verifies when its header is valid.
    let token = sign_raw(
        r#"{"alg":"HS256","kid":"k1"}"#,
        &format!(r#"{{"exp":{},"extra":[1,{{"a":null}}]}}"#, NOW + 1),
    );
    assert_eq!(check(&token), Ok(Claims::new(NOW + 1)));
}

#[test]
fn missing_and_empty() {
    assert_eq!(check(""), Err(TokenError::Missing));
}

#[test]
fn rejects_alg_none_and_hs512_even_when_correctly_tagged() {
    let payload = format!(r#"{{"exp":{}}}"#, NOW + 600);
    for alg in ["none", "HS512", "hs256", "RS256"] {
        let token = sign_raw(&format!(r#"{{"alg":"{alg}","kid":"k1"}}"#), &payload);
        assert_eq!(
            check(&token),
            Err(TokenError::UnsupportedAlgorithm),
            "{alg}"
        );
    }
    let token = sign_raw(r#"{"kid":"k1"}"#, &payload);
    assert_eq!(check(&token), Err(TokenError::UnsupportedAlgorithm));
    // Classic `alg: none` with an empty signature.
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"k1"}"#),
        URL_SAFE_NO_PAD.encode(&payload)
    );
    assert_eq!(check(&none), Err(TokenError::UnsupportedAlgorithm));
}

#[test]
fn rejects_missing_and_unknown_kid() {
    let payload = format!(r#"{{"exp":{}}}"#, NOW + 600);
    let token = sign_raw(r#"{"alg":"HS256"}"#, &payload);
    assert_eq!(check(&token), Err(TokenError::UnknownKey));
    let token = sign_raw(r#"{"alg":"HS256","kid":"k2"}"#, &payload);
    assert_eq!(check(&token), Err(TokenError::UnknownKey));
    assert_eq!(
        check(&issue(&key("other"), &claims())),
        Err(TokenError::UnknownKey)
    );
}

#[test]
fn rejects_bad_typ_crit_and_duplicate_header_members() {
    let payload = format!(r#"{{"exp":{}}}"#, NOW + 600);
    for header in [
        r#"{"alg":"HS256","kid":"k1","typ":"JOSE"}"#,
        r#"{"alg":"HS256","kid":"k1","crit":["exp"]}"#,
        r#"{"alg":"HS256","kid":"k1","crit":null}"#,
        r#"{"alg":"HS256","kid":"k1","alg":"HS256"}"#,
        r#"["HS256","k1"]"#,
        r#"{"alg":"HS256","kid":1}"#,
    ] {
        assert!(
            matches!(
                check(&sign_raw(header, &payload)),
                Err(TokenError::Malformed(_))
            ),
            "{header}"
        );
    }
    let ok = sign_raw(r#"{"alg":"HS256","kid":"k1","typ":"JWT"}"#, &payload);
    assert!(check(&ok).is_ok());
}

#[test]
fn rejects_flipped_signature_and_payload() {
    let token = issue(&key("k1"), &claims());
    let dots: Vec<usize> = token.match_indices('.').map(|(i, _)| i).collect();
    assert_eq!(
        check(&flip_char(&token, dots[1] + 3)),
        Err(TokenError::BadSignature)
    );
    assert_eq!(
        check(&flip_char(&token, dots[0] + 3)),
        Err(TokenError::BadSignature)
    );
    // Same kid, different secret.
    let impostor = TokenKey::new("k1", vec![7; 32]).unwrap();
    assert_eq!(
        check(&issue(&impostor, &claims())),
        Err(TokenError::BadSignature)
    );
    // A signature of the wrong length.
    let short = format!(
        "{}.{}",
        &token[..dots[1]],
        URL_SAFE_NO_PAD.encode([0u8; 16])
    );
    assert_eq!(check(&short), Err(TokenError::BadSignature));
}

#[test]
fn checks_signature_before_parsing_payload() {
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","kid":"k1"}"#);
    let token = format!(
        "{header}.{}.{}",
        URL_SAFE_NO_PAD.encode("not json"),
        URL_SAFE_NO_PAD.encode([0u8; 32])
    );
    assert_eq!(check(&token), Err(TokenError::BadSignature));
    // Correctly signed but unparsable payloads are malformed.
    for payload in [
        "not json",
        "{}",
        r#"{"exp":"soon"}"#,
        r#"{"exp":1.5e9}"#,
        "[1]",
    ] {
        let token = sign_raw(r#"{"alg":"HS256","kid":"k1"}"#, payload);
        assert!(
            matches!(check(&token), Err(TokenError::Malformed(_))),
            "{payload}"
        );
    }
    let dup = format!(r#"{{"exp":{0},"exp":{0}}}"#, NOW + 600);
    let token = sign_raw(r#"{"alg":"HS256","kid":"k1"}"#, &dup);
    assert!(matches!(check(&token), Err(TokenError::Malformed(_))));
}

#[test]
fn expiry_boundary_and_leeway() {
    let v = verifier().with_leeway_secs(0);
    let token = issue(&key("k1"), &Claims::new(NOW));
    assert_eq!(v.verify(&token, NOW, &MAILBOX), Err(TokenError::Expired));
    assert!(v.verify(&token, NOW - 1, &MAILBOX).is_ok());

    // Default leeway of 30 s: valid until exp + 30 exclusive.
    assert_eq!(verifier().leeway_secs(), 30);
    assert!(verifier().verify(&token, NOW + 29, &MAILBOX).is_ok());
    assert_eq!(
        verifier().verify(&token, NOW + 30, &MAILBOX),
        Err(TokenError::Expired)
    );

    let huge = issue(&key("k1"), &Claims::new(u64::MAX));
    assert!(verifier().verify(&huge, u64::MAX - 1, &MAILBOX).is_ok());
}

#[test]
fn not_before_and_leeway() {
    let claims = |nbf| Claims {
        nbf: Some(nbf),
        ..claims()
    };
    let token = issue(&key("k1"), &claims(NOW + 31));
    assert_eq!(check(&token), Err(TokenError::NotYetValid));
    assert!(check(&issue(&key("k1"), &claims(NOW + 30))).is_ok());
    let strict = verifier().with_leeway_secs(0);
    let token = issue(&key("k1"), &claims(NOW + 1));
    assert_eq!(
        strict.verify(&token, NOW, &MAILBOX),
        Err(TokenError::NotYetValid)
    );
    assert!(strict.verify(&token, NOW + 1, &MAILBOX).is_ok());
}

#[test]
fn audience_and_issuer() {
    let with = |aud: Option<&str>, iss: Option<&str>| {
        issue(
            &key("k1"),
            &Claims {
                aud: aud.map(Into::into),
                iss: iss.map(Into::into),
                ..claims()
            },
        )
    };
    let v = verifier().with_audience("relay").with_issuer("backend");
    let at = |v: &TokenVerifier, t: &str| v.verify(t, NOW, &MAILBOX);
    assert!(at(&v, &with(Some("relay"), Some("backend"))).is_ok());
    assert_eq!(
        at(&v, &with(Some("other"), Some("backend"))),
        Err(TokenError::WrongAudience)
    );
    assert_eq!(
        at(&v, &with(None, Some("backend"))),
        Err(TokenError::WrongAudience)
    );
    assert_eq!(
        at(&v, &with(Some("relay"), Some("evil"))),
        Err(TokenError::WrongIssuer)
    );
    assert_eq!(
        at(&v, &with(Some("relay"), None)),
        Err(TokenError::WrongIssuer)
    );
    // Without a configured audience, a token meant for some audience is not for us.
    assert_eq!(
        check(&with(Some("relay"), None)),
        Err(TokenError::WrongAudience)
    );
    // Without a configured issuer, any issuer is accepted.
    assert!(check(&with(None, Some("anyone"))).is_ok());
}

#[test]
fn mailbox_binding() {
    let bound = |hex: String| {
        issue(
            &key("k1"),
            &Claims {
                sealwire_mailbox: Some(hex),
                ..claims()
            },
        )
    };
    assert!(check(&bound("ab".repeat(32))).is_ok());
    assert!(check(&issue(&key("k1"), &claims())).is_ok());
    for wrong in [
        "cd".repeat(32),
        "AB".repeat(32),
        "ab".repeat(31),
        "ab".repeat(33),
        String::new(),
    ] {
        assert_eq!(
            check(&bound(wrong.clone())),
            Err(TokenError::WrongMailbox),
            "{wrong}"
        );
    }
    let mut other = MAILBOX;
    other[31] = 0;
    let token = bound("ab".repeat(32));
    assert_eq!(
        verifier().verify(&token, NOW, &other),
        Err(TokenError::WrongMailbox)
    );
}

#[test]
fn strict_base64url_segments() {
    let token = issue(&key("k1"), &claims());
    let (rest, sig) = token.rsplit_once('.').unwrap();
    assert_eq!(sig.len(), 43);
    // Padding accepted by lenient decoders, which would decode to the same signature.
    let padded = format!("{token}=");
    assert!(URL_SAFE.decode(&padded[rest.len() + 1..]).is_ok());
    assert!(matches!(check(&padded), Err(TokenError::Malformed(_))));
    // Non-canonical trailing bits: same bytes for a lenient decoder.
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let last = ALPHABET
        .iter()
        .position(|&c| c == *sig.as_bytes().last().unwrap())
        .unwrap();
    let sloppy = format!("{rest}.{}{}", &sig[..42], ALPHABET[last | 1] as char);
    assert!(matches!(check(&sloppy), Err(TokenError::Malformed(_))));
    // Standard alphabet and whitespace.
    let std_sig = STANDARD.encode(URL_SAFE_NO_PAD.decode(sig).unwrap());
    if std_sig.trim_end_matches('=') != sig {
        let token = format!("{rest}.{}", std_sig.trim_end_matches('='));
        assert!(matches!(check(&token), Err(TokenError::Malformed(_))));
    }
    let spaced = format!("{rest}.{} ", sig);
    assert!(matches!(check(&spaced), Err(TokenError::Malformed(_))));
    let plus = format!("{}+{}", &token[..5], &token[6..]);
    assert!(matches!(check(&plus), Err(TokenError::Malformed(_))));
}

#[test]
fn segment_count() {
    let token = issue(&key("k1"), &claims());
    for bad in [
        format!("{token}.e30"),
        format!("{token}."),
        token.rsplit_once('.').unwrap().0.to_owned(),
        token.replace('.', ""),
    ] {
        assert!(
            matches!(check(&bad), Err(TokenError::Malformed(_))),
            "{bad}"
        );
    }
}

#[test]
fn oversize_tokens_are_rejected_even_if_valid() {
    let sized = |n| {
        issue(
            &key("k1"),
            &Claims {
                sub: Some("x".repeat(n)),
                ..claims()
            },
        )
    };
    let mut n = 2900;
    while sized(n + 1).len() <= 4096 {
        n += 1;
    }
    let largest = sized(n);
    assert!(largest.len() > 4090 && largest.len() <= 4096);
    assert!(check(&largest).is_ok());
    let over = sized(n + 1);
    assert!(over.len() > 4096);
    assert!(matches!(check(&over), Err(TokenError::Malformed(_))));
}

#[test]
fn key_rotation() {
    let (k1, k2) = (key("k1"), key("k2"));
    let (t1, t2) = (issue(&k1, &claims()), issue(&k2, &claims()));
    let both = TokenVerifier::new(TokenKeys::new(vec![k1.clone(), k2.clone()]).unwrap());
    assert_eq!(both.keys().kids().collect::<Vec<_>>(), ["k1", "k2"]);
    assert!(both.verify(&t1, NOW, &MAILBOX).is_ok());
    assert!(both.verify(&t2, NOW, &MAILBOX).is_ok());
    let only2 = TokenVerifier::new(TokenKeys::new(vec![k2]).unwrap());
    assert_eq!(
        only2.verify(&t1, NOW, &MAILBOX),
        Err(TokenError::UnknownKey)
    );
    assert!(only2.verify(&t2, NOW, &MAILBOX).is_ok());
}

#[test]
fn key_and_ring_validation() {
    assert!(TokenKey::new("k", vec![1; 31]).is_err());
    assert!(TokenKey::new("k", vec![1; 32]).is_ok());
    for kid in ["", "a b", "tab\t", "é", "k".repeat(65).as_str()] {
        assert!(matches!(
            TokenKey::new(kid, vec![1; 32]),
            Err(TokenError::InvalidKey(_))
        ));
    }
    assert!(TokenKey::new("k".repeat(64), vec![1; 32]).is_ok());
    assert!(matches!(
        TokenKeys::new(vec![]),
        Err(TokenError::InvalidKeyRing(_))
    ));
    let dup = TokenKeys::new(vec![key("k1"), key("k2"), key("k1")]);
    assert!(matches!(dup, Err(TokenError::InvalidKeyRing(m)) if m.contains("k1")));
}

#[test]
fn key_file_parsing() {
    let secret: Vec<u8> = (0u8..40).map(|i| i.wrapping_mul(37) ^ 0xfb).collect();
    let std_padded = STANDARD.encode(&secret);
    let url_unpadded = URL_SAFE_NO_PAD.encode(&secret);
    assert!(std_padded.contains(['+', '/']) && url_unpadded.contains(['-', '_']));
    let text = format!(
        "# relay keys\n\n  a {std_padded}\r\n# old\nb\t{url_unpadded}\nc {}\nd {}\n",
        std_padded.trim_end_matches('='),
        URL_SAFE.encode(&secret),
    );
    let keys = TokenKeys::parse(&text).unwrap();
    assert_eq!(keys.kids().collect::<Vec<_>>(), ["a", "b", "c", "d"]);
    for kid in ["a", "b", "c", "d"] {
        // The parsed secret is the original one: its tokens verify under a key built from it.
        let k = keys.get(kid).unwrap();
        assert_eq!(k.kid(), kid);
        let direct = TokenKeys::new(vec![TokenKey::new(kid, secret.clone()).unwrap()]).unwrap();
        let token = issue(k, &claims());
        assert!(
            TokenVerifier::new(direct)
                .verify(&token, NOW, &MAILBOX)
                .is_ok()
        );
    }
    assert!(keys.get("e").is_none());

    let short = STANDARD.encode([9u8; 31]);
    let cases = [
        (format!("k {short}"), "line 1"),
        (
            format!("# c\nk {std_padded}\nk {url_unpadded}"),
            "duplicate kid `k`",
        ),
        (format!("k {std_padded} extra"), "line 1"),
        (std_padded.clone(), "line 1"),
        (format!("k {}!", &std_padded[..8]), "not valid base64"),
        (format!("k +-{url_unpadded}"), "not valid base64"),
        ("# only comments\n\n".to_owned(), "no keys"),
    ];
    for (text, expect) in cases {
        let err = TokenKeys::parse(&text).unwrap_err();
        let TokenError::KeyFile(msg) = &err else {
            panic!("{err:?}")
        };
        assert!(msg.contains(expect), "{msg}");
        for leak in [&std_padded[..20], &url_unpadded[..20], &short[..20]] {
            assert!(
                !msg.contains(leak) && !err.to_string().contains(leak),
                "{msg}"
            );
        }
    }
}

#[cfg(unix)]
#[test]
fn key_file_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let path =
        std::env::temp_dir().join(format!("sealwire-token-test-{}.keys", std::process::id()));
    let secret = STANDARD.encode([5u8; 32]);
    std::fs::write(&path, format!("# test\nk1 {secret}\n")).unwrap();
    for mode in [0o640, 0o604, 0o660, 0o700 | 0o010] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let err = TokenKeys::from_file(&path).unwrap_err();
        let TokenError::KeyFile(msg) = &err else {
            panic!("{err:?}")
        };
        assert!(
            msg.contains("chmod 600") && msg.contains(&*path.to_string_lossy()),
            "{msg}"
        );
    }
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let keys = TokenKeys::from_file(&path).unwrap();
    assert_eq!(keys.kids().collect::<Vec<_>>(), ["k1"]);
    std::fs::write(&path, format!("k1 {}\n", STANDARD.encode([5u8; 8]))).unwrap();
    let err = TokenKeys::from_file(&path).unwrap_err().to_string();
    assert!(
        err.contains("line 1") && !err.contains(&STANDARD.encode([5u8; 8])),
        "{err}"
    );
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(
        TokenKeys::from_file(&path),
        Err(TokenError::KeyFile(_))
    ));
}

#[test]
fn key_from_env_errors_name_the_variable_only() {
    let err = TokenKeys::from_env("SEALWIRE_TOKEN_TEST_SURELY_UNSET").unwrap_err();
    assert!(
        err.to_string().contains("SEALWIRE_TOKEN_TEST_SURELY_UNSET"),
        "{err}"
    );
    // PATH exists but is not a key ring; its value must not be echoed.
    if let Ok(path) = std::env::var("PATH") {
        let err = TokenKeys::from_env("PATH").unwrap_err().to_string();
        assert!(err.contains("environment variable PATH"), "{err}");
        assert!(path.is_empty() || !err.contains(&path), "{err}");
    }
}

#[test]
fn debug_never_shows_secrets() {
    let secret_text = String::from_utf8(SECRET.to_vec()).unwrap();
    let k = key("k1");
    let ring = TokenKeys::new(vec![k.clone(), key("k2")]).unwrap();
    let token = issue(&k, &claims());
    let bearer = BearerToken::new(token.clone());
    assert_eq!(bearer.as_str(), token);
    let k_dbg = format!("{k:?}");
    assert_eq!(k_dbg, r#"TokenKey { kid: "k1", secret: <redacted> }"#);
    assert_eq!(format!("{ring:?}"), r#"TokenKeys { kids: ["k1", "k2"] }"#);
    assert_eq!(format!("{bearer:?}"), "BearerToken(<redacted>)");
    let v_dbg = format!("{:?}", TokenVerifier::new(ring.clone()));
    for dbg in [k_dbg, format!("{ring:#?}"), format!("{bearer:#?}"), v_dbg] {
        assert!(
            !dbg.contains("SECRET") && !dbg.contains(&secret_text),
            "{dbg}"
        );
        assert!(!dbg.contains(&STANDARD.encode(SECRET)[..16]), "{dbg}");
        assert!(!dbg.contains(&token[..20]), "{dbg}");
    }
}

/// Produced with PyJWT 2.15.1:
/// `jwt.encode(claims, PYJWT_SECRET, algorithm="HS256", headers={"kid": "pyjwt-2024"})`
/// with claims `exp=4102444800, nbf=iat=1700000000, sub="user-42", aud="sealwire-relay",
/// iss="https://backend.example", sealwire_mailbox="11"*32, custom={"x": [1, 2]}`.
const PYJWT_TOKEN: &str = "eyJhbGciOiJIUzI1NiIsImtpZCI6InB5and0LTIwMjQiLCJ0eXAiOiJKV1QifQ.\
eyJleHAiOjQxMDI0NDQ4MDAsIm5iZiI6MTcwMDAwMDAwMCwiaWF0IjoxNzAwMDAwMDAwLCJzdWIiOiJ1c2VyLTQyIiwiYXVkIjoic2VhbHdpcmUtcmVsYXkiLCJpc3MiOiJodHRwczovL2JhY2tlbmQuZXhhbXBsZSIsInNlYWx3aXJlX21haWxib3giOiIxMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExIiwiY3VzdG9tIjp7IngiOlsxLDJdfX0.\
rpNTMePioEOv3cA_6UB-9TICda8xH2GMKzs0zGSZn2w";
/// Test-only key, as a key-file line.
const PYJWT_KEY_LINE: &str =
    "pyjwt-2024 c2VhbHdpcmUtcHlqd3QtY29tcGF0LXRlc3Qtc2VjcmV0LTAxMjM0NTY3ODk=";

#[test]
fn verifies_a_pyjwt_token() {
    let keys = TokenKeys::parse(PYJWT_KEY_LINE).unwrap();
    let v = TokenVerifier::new(keys)
        .with_audience("sealwire-relay")
        .with_issuer("https://backend.example");
    let claims = v.verify(PYJWT_TOKEN, NOW, &[0x11; 32]).unwrap();
    assert_eq!(
        claims,
        Claims {
            exp: 4_102_444_800,
            nbf: Some(1_700_000_000),
            iat: Some(1_700_000_000),
            sub: Some("user-42".into()),
            aud: Some("sealwire-relay".into()),
            iss: Some("https://backend.example".into()),
            sealwire_mailbox: Some("11".repeat(32)),
        }
    );
    assert_eq!(
        v.verify(PYJWT_TOKEN, NOW, &[0x12; 32]),
        Err(TokenError::WrongMailbox)
    );
    assert_eq!(
        v.verify(PYJWT_TOKEN, 1_600_000_000, &[0x11; 32]),
        Err(TokenError::NotYetValid)
    );
    let tampered = PYJWT_TOKEN.replacen("eyJleHAiOjQx", "eyJleHAiOjUx", 1);
    assert_eq!(
        v.verify(&tampered, NOW, &[0x11; 32]),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn errors_say_what_to_do() {
    for err in [
        TokenError::Expired,
        TokenError::BadSignature,
        TokenError::UnknownKey,
    ] {
        let text = err.to_string();
        assert!(text.contains("fetch") || text.contains("key"), "{text}");
    }
    let err: sealwire_transport::Error = TokenError::Expired.into();
    assert!(err.to_string().contains("token expired"));
}
