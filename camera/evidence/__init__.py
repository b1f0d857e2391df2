"""Evidence: what a recording is on disk, and the proof that it was not altered.

One home for the on-disk format (typed records, manifest, journal), the
device key, in-stream video signatures (Signed Video Framework), the signed
manifest chain, the audit log and ``verify``. SPEC sections 7 and 12.
"""
