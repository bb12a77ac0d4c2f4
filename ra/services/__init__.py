"""Business operations: each checks, changes state and audits in one transaction."""
