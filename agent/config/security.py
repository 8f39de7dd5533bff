"""The ``kafka.security`` section: TLS and SASL, with the password read and kept secret."""

import os
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, PrivateAttr, SecretStr, ValidationInfo, model_validator

from agent.config._base import _Section
from agent.config._errors import _context, _Expect, _Issue, _problems
from agent.config._fields import _OptFile, _OptPath, _OptText, _upper


class KafkaSecurity(_Section):
    """How the agent authenticates to Kafka: ``kafka.security``.

    Passwords are never written in the config; name an environment variable or a file that
    holds one. The password read is kept in :attr:`sasl_password` and never shown.

    Attributes
    ----------
    protocol : {'PLAINTEXT', 'SSL', 'SASL_PLAINTEXT', 'SASL_SSL'}, default 'PLAINTEXT'
        The Kafka security protocol.
    ssl_cafile, ssl_certfile, ssl_keyfile : path, optional
        CA bundle, client certificate and its private key (PEM). Each must exist and needs
        protocol SSL or SASL_SSL; ``ssl_keyfile`` needs ``ssl_certfile``.
    sasl_mechanism : {'PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'}, optional
        Required when protocol is SASL_PLAINTEXT or SASL_SSL.
    sasl_username : str, optional
        Required with SASL.
    sasl_password_env : str, optional
        The name of the environment variable that holds the SASL password.
    sasl_password_file : path, optional
        A file that holds the SASL password (a trailing newline is dropped). With SASL, exactly
        one of ``sasl_password_env`` and ``sasl_password_file`` is required.
    """

    protocol: Annotated[
        Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"], BeforeValidator(_upper)
    ] = "PLAINTEXT"
    ssl_cafile: _OptFile = None
    ssl_certfile: _OptFile = None
    ssl_keyfile: _OptFile = None
    sasl_mechanism: Annotated[
        Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None, BeforeValidator(_upper)
    ] = None
    sasl_username: _OptText = None
    sasl_password_env: Annotated[
        str | None,
        Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$"),
        _Expect("the name of an environment variable"),
    ] = None
    sasl_password_file: _OptPath = None
    _sasl_password: SecretStr | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> "KafkaSecurity":
        issues = []
        ssl_keys = [k for k in ("ssl_cafile", "ssl_certfile", "ssl_keyfile") if getattr(self, k)]
        sasl_keys = [
            k for k in type(self).model_fields if k.startswith("sasl_") and getattr(self, k)
        ]
        if self.protocol not in ("SSL", "SASL_SSL"):
            need = f"needs protocol SSL or SASL_SSL, but protocol is {self.protocol}"
            issues += [_Issue(key, need) for key in ssl_keys]
        if self.ssl_keyfile and not self.ssl_certfile:
            issues.append(_Issue("ssl_certfile", "required when ssl_keyfile is set"))
        if not self.protocol.startswith("SASL_"):
            need = f"needs protocol SASL_PLAINTEXT or SASL_SSL, but protocol is {self.protocol}"
            issues += [_Issue(key, need) for key in sasl_keys]
        else:
            required = f"required when protocol is {self.protocol}"
            if self.sasl_mechanism is None:
                choices = "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"
                issues.append(_Issue("sasl_mechanism", f"{required}; expected {choices}"))
            if self.sasl_username is None:
                issues.append(_Issue("sasl_username", required))
            if self.sasl_password_env and self.sasl_password_file:
                issues.append(
                    _Issue(
                        "sasl_password_env",
                        "set only one of sasl_password_env and sasl_password_file",
                    )
                )
            else:
                password, issue = self._read_password(_context(info).get("env", os.environ))
                issues += [issue] if issue else []
                self._sasl_password = password
        if issues:
            raise _problems(*issues)
        return self

    def _read_password(self, env: Mapping[str, str]) -> tuple[SecretStr | None, _Issue | None]:
        # Neither the variable's name nor the file's path is echoed: users do put the password
        # itself where its name belongs.
        if self.sasl_password_env:
            value = env.get(self.sasl_password_env)
            if not value:
                return None, _Issue("sasl_password_env", "names an unset or empty variable")
            return SecretStr(value), None
        if self.sasl_password_file:
            try:
                value = self.sasl_password_file.read_text(encoding="utf-8").rstrip("\r\n")
            except FileNotFoundError:
                return None, _Issue("sasl_password_file", "names a file that does not exist")
            except (OSError, UnicodeError) as exc:
                return None, _Issue("sasl_password_file", f"cannot be read ({type(exc).__name__})")
            if not value:
                return None, _Issue("sasl_password_file", "names an empty file")
            return SecretStr(value), None
        return None, _Issue(
            "sasl_password_env",
            f"required when protocol is {self.protocol}: set sasl_password_env (the name of an "
            "environment variable) or sasl_password_file (a file holding the password)",
        )

    @property
    def sasl_password(self) -> SecretStr | None:
        """The SASL password read from the environment or a file; None without SASL."""
        return self._sasl_password

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for kafka-python's KafkaConsumer and KafkaProducer.

        The result holds the password in clear, as kafka-python needs it: never log it.

        Examples
        --------
        >>> KafkaSecurity().client_kwargs()
        {'security_protocol': 'PLAINTEXT'}
        """
        kwargs: dict[str, Any] = {"security_protocol": self.protocol}
        for key in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            if getattr(self, key) is not None:
                kwargs[key] = str(getattr(self, key))
        if self.protocol.startswith("SASL_"):
            kwargs["sasl_mechanism"] = self.sasl_mechanism
            kwargs["sasl_plain_username"] = self.sasl_username
            if self._sasl_password is not None:
                kwargs["sasl_plain_password"] = self._sasl_password.get_secret_value()
        return kwargs
