"""The unified social credit code (统一社会信用代码, GB 32100-2015): 18 characters with a check character."""

from __future__ import annotations

# GB 32100-2015 uses the digits and the capital letters except I, O, S, V, Z.
ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
VALUES = {ch: i for i, ch in enumerate(ALPHABET)}


def check_character(first17: str) -> str:
    total = sum(VALUES[ch] * w for ch, w in zip(first17, WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def credit_code_error(code: str) -> str | None:
    """None when valid, else why not (in words an enterprise clerk can act on)."""
    if len(code) != 18:
        return "统一社会信用代码应为18位 (must be 18 characters)"
    bad = sorted({ch for ch in code if ch not in VALUES})
    if bad:
        return f"统一社会信用代码含非法字符 {''.join(bad)} (allowed: digits and capitals except I, O, S, V, Z)"
    if not code[2:8].isdigit():
        return "第3-8位应为登记管理机关行政区划码 (characters 3-8 must be an administrative division code)"
    if check_character(code[:17]) != code[17]:
        return "统一社会信用代码校验位不正确 (check character does not match)"
    return None


def make_credit_code(first17: str) -> str:
    """Complete 17 characters with their check character (used for demo data and tests)."""
    return first17 + check_character(first17)
