"""AlwaysAdmit and AlwaysDeny: upstream's trivial plugins (deprecated there, handy in tests)."""

from __future__ import annotations

from kubeha.apiserver.admission import Attributes, ValidatingPlugin, forbidden, register_plugin


class AlwaysAdmit(ValidatingPlugin):
    async def validate(self, attrs: Attributes) -> None:
        return None


class AlwaysDeny(ValidatingPlugin):
    async def validate(self, attrs: Attributes) -> None:
        raise forbidden(attrs, "admission control is denying all modifications")


register_plugin("AlwaysAdmit", AlwaysAdmit)
register_plugin("AlwaysDeny", AlwaysDeny)
