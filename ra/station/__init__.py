"""The delivery station: the operator's workstation client that enrols holders' USB tokens.

It runs where the token is plugged in, talks to the back-office over its JSON API with the
operator's bearer token, and to the token through PKCS#11 (:mod:`ca.token`). The holder's key
pair is generated on the token and never leaves it; the holder's PIN never leaves the station.
Nothing here opens the database: the back-office decides and records everything.
"""
