//! Fresh secrets (codes, tokens, launch ids) from the OS-seeded CSPRNG.
//! Not [`crate::rng`], which is deterministic on purpose for the data set.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;

/// A fresh random token: 256 bits from the OS-seeded CSPRNG, base64url
/// without padding (43 characters).
pub(crate) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}
