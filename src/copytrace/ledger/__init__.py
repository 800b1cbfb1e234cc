"""The tamper-evident registration log: an RFC 9162 Merkle tree of registration and removal
entries kept in the catalogue, signed checkpoints (C2SP signed notes, Ed25519), and inclusion
and consistency proofs that anyone can check with the log's public key alone
(``proofs.check_inclusion``, ``proofs.check_consistency``). See docs/ledger.md."""
