//! Mutation recipes: the fuzzer's bytes read as edits to a genuine message.

/// Most edits one recipe applies (longer recipes are cut).
const MAX_EDITS: usize = 32;

/// Applies `recipe` to `base`. The recipe is a list of 4-byte edits `[op, pos_lo, pos_hi,
/// value]`, with `pos = u16::from_le_bytes([pos_lo, pos_hi])` taken modulo the current length:
///
/// | `op % 6` | edit |
/// |---|---|
/// | 0 | XOR the byte at `pos` with `value` (with `value | 1`, so the byte changes) |
/// | 1 | set the byte at `pos` to `value` |
/// | 2 | truncate to `pos` bytes |
/// | 3 | insert `value` at `pos` |
/// | 4 | remove the byte at `pos` |
/// | 5 | append `value` |
///
/// A trailing partial edit is ignored. An empty recipe gives `base` back unchanged.
pub fn mutate(base: &[u8], recipe: &[u8]) -> Vec<u8> {
    let mut out = base.to_vec();
    for edit in recipe.chunks_exact(4).take(MAX_EDITS) {
        let pos = usize::from(u16::from_le_bytes([edit[1], edit[2]]));
        let value = edit[3];
        let len = out.len();
        match edit[0] % 6 {
            0 if len > 0 => out[pos % len] ^= value | 1,
            1 if len > 0 => out[pos % len] = value,
            2 => out.truncate(pos % (len + 1)),
            3 => out.insert(pos % (len + 1), value),
            4 if len > 0 => {
                out.remove(pos % len);
            }
            5 => out.push(value),
            _ => {}
        }
    }
    out
}

/// One edit, for building recipes (seeds, tests).
pub(crate) fn edit(op: u8, pos: u16, value: u8) -> [u8; 4] {
    let [lo, hi] = pos.to_le_bytes();
    [op, lo, hi, value]
}
