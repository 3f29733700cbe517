"""Rules in memory, for unit tests (the same behaviour as the Redis store)."""

from __future__ import annotations

from rules_engine.application.ports import StoredRule


class InMemoryRuleStore:
    def __init__(self) -> None:
        self.rules: dict[str, StoredRule] = {}

    async def all(self) -> list[StoredRule]:
        return [self.rules[k] for k in sorted(self.rules)]

    async def get(self, rule_id: str) -> StoredRule | None:
        return self.rules.get(rule_id)

    async def add(self, rule_id: str, rule: StoredRule) -> bool:
        if rule_id in self.rules:
            return False
        self.rules[rule_id] = rule
        return True

    async def put(self, rule_id: str, rule: StoredRule) -> None:
        self.rules[rule_id] = rule

    async def delete(self, rule_id: str) -> bool:
        return self.rules.pop(rule_id, None) is not None

    async def close(self) -> None:
        return None
