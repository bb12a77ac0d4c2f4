"""Instance configuration: environment → one frozen ``Settings`` object.

Configuration flows one way: environment / instance folder → ``Settings`` → ``create_app`` and
the CLI → frozen ``ca`` objects. PINs are read from the environment only when needed and are
never part of ``Settings``' repr.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_BIND = "127.0.0.1:8000"
ROOT_SLUG = "ac-racine"
ISSUING_SLUG = "ac-rgs2-entites"
DEV_PINS_FILE = "softhsm-dev-pins.env"
PIN_VARIABLES = ("GUICHET_ROOT_PIN", "GUICHET_ROOT_SO_PIN", "GUICHET_CA_PIN", "GUICHET_CA_SO_PIN")


class ConfigError(Exception):
    """The instance configuration is missing or inconsistent."""


@dataclass(frozen=True)
class Settings:
    instance: Path
    database_url: str
    pkcs11_module: str
    root_token_label: str
    ca_token_label: str
    public_url: str
    policy_oid: str
    crl_next_update_hours: int
    bind: str
    territory: tuple[str, ...]  # départements whose entities may sign a convention
    bpu_path: Path | None  # price schedule; None = the built-in default
    secret_key: bytes = field(repr=False)
    proxies: int = 0  # reverse proxies in front (X-Forwarded-For hops to trust)

    @property
    def publication_dir(self) -> Path:
        """Where CA certificates and CRLs are written, served at /pki/."""
        return self.instance / "pki"

    @property
    def documents_dir(self) -> Path:
        return self.instance / "documents"

    @property
    def uses_softhsm(self) -> bool:
        return "softhsm" in Path(self.pkcs11_module).name

    def url_for_pki(self, filename: str) -> str:
        return f"{self.public_url.rstrip('/')}/pki/{filename}"

    def ca_pin(self) -> str:
        return _pin("GUICHET_CA_PIN", "the issuing CA token")

    def root_pin(self) -> str:
        return _pin("GUICHET_ROOT_PIN", "the root CA token")


def _pin(variable: str, what: str) -> str:
    value = os.environ.get(variable)
    if not value:
        raise ConfigError(f"{variable} is not set: it holds the user PIN of {what}.")
    return value


def _find_pkcs11_module() -> str:
    from ca.token import find_softhsm_module

    return find_softhsm_module()


def load_settings(**overrides: object) -> Settings:
    """Read the environment (and the instance folder) into ``Settings``."""
    instance = Path(os.environ.get("GUICHET_INSTANCE", "instance")).resolve()
    database_url = os.environ.get("GUICHET_DATABASE_URL") or f"sqlite:///{instance / 'guichet.db'}"
    module = os.environ.get("GUICHET_PKCS11_MODULE") or _find_pkcs11_module()
    values: dict[str, object] = dict(
        instance=instance,
        database_url=database_url,
        pkcs11_module=module,
        root_token_label=os.environ.get("GUICHET_ROOT_TOKEN", "guichet-ac-racine"),
        ca_token_label=os.environ.get("GUICHET_CA_TOKEN", "guichet-ac-entites"),
        public_url=os.environ.get("GUICHET_PUBLIC_URL", "http://pki.example.com"),
        policy_oid=os.environ.get("GUICHET_POLICY_OID", "1.3.6.1.4.1.0.1.1.1"),
        crl_next_update_hours=int(os.environ.get("GUICHET_CRL_NEXT_UPDATE_HOURS", "168")),
        bind=os.environ.get("GUICHET_BIND", DEFAULT_BIND),
        territory=tuple(
            d.strip() for d in os.environ.get("GUICHET_TERRITORY", "22,29,35,56").split(",") if d.strip()
        ),
        bpu_path=Path(os.environ["GUICHET_BPU"]) if os.environ.get("GUICHET_BPU") else None,
        secret_key=b"",
        proxies=int(os.environ.get("GUICHET_PROXIES", "0")),
    )
    values.update(overrides)
    settings = Settings(**values)  # type: ignore[arg-type]
    if not settings.secret_key:
        settings = _with_secret_key(settings)
    if settings.uses_softhsm:
        prepare_softhsm(settings.instance)
        load_dev_pins(settings.instance)
    return settings


def _with_secret_key(settings: Settings) -> Settings:
    """GUICHET_SECRET_KEY (hex) or the instance's own ``secret_key`` file, made on first use."""
    from dataclasses import replace

    env = os.environ.get("GUICHET_SECRET_KEY")
    if env:
        return replace(settings, secret_key=bytes.fromhex(env))
    path = settings.instance / "secret_key"
    if not path.exists():
        settings.instance.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return replace(settings, secret_key=bytes.fromhex(path.read_text().strip()))


def prepare_softhsm(instance: Path) -> None:
    """Point SoftHSM at the instance's token folder, unless SOFTHSM2_CONF is already set."""
    if os.environ.get("SOFTHSM2_CONF"):
        return
    tokens = instance / "tokens"
    tokens.mkdir(parents=True, exist_ok=True, mode=0o700)
    conf = instance / "softhsm2.conf"
    if not conf.exists():
        conf.write_text(
            f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
        )
    os.environ["SOFTHSM2_CONF"] = str(conf)


def load_dev_pins(instance: Path) -> None:
    """SoftHSM development instance: export the PINs of its 0600 PIN file, if any.

    Variables already set in the environment win; a production instance has no such file.
    """
    path = instance / DEV_PINS_FILE
    if not path.exists():
        return
    for line in path.read_text().splitlines():
        name, _, value = line.partition("=")
        if name in PIN_VARIABLES and value:
            os.environ.setdefault(name, value)
