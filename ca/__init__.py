"""guichet signing core: PKCS#11 keys, RGS** profiles, lint-then-sign issuance, CRLs.

This package never imports flask, sqlalchemy or ``ra``: data comes in as frozen
dataclasses and bytes, DER goes out.
"""
