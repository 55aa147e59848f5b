//! A small deterministic generator (xorshift64) for the differential tests: a failure names a
//! seed that reproduces it, with no dependency.

#![allow(dead_code)]

pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// One of `from`.
    pub fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len() as u64) as usize]
    }

    /// Up to `most` picks of `from`.
    pub fn some(&mut self, from: &[&str], most: u64) -> Vec<String> {
        (0..self.below(most + 1)).map(|_| self.pick(from).to_string()).collect()
    }
}
