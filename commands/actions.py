"""Building corporate-action and account-setting events from text, shared by the CLI and the CSV import."""

from __future__ import annotations

from decimal import Decimal

from domain import events as ev
from domain import values as v
from domain.errors import InvalidValue


def parse_ratio(text: str, what: str = "ratio") -> tuple[Decimal, Decimal]:
    """`new:old` (4:1, 1:8, 3:2) or a single number meaning `number:1`. Zero, negative and malformed are refused."""
    text = (text or "").strip()
    new, sep, old = text.partition(":")
    try:
        a = v.positive(new, what)
        b = v.positive(old, what) if sep else Decimal(1)
    except InvalidValue:
        raise InvalidValue(f"{what} {text!r} must be two positive numbers as new:old, such as 4:1, 1:8 or 3:2") from None
    return a, b


def security_stream(symbol: str) -> str:
    return f"security:{symbol}"


def _price_means_cash(what: str, fraction: str, cash_price) -> None:
    """A cash-in-lieu price with fractions kept or rounded contradicts itself: refused, not ignored (found by review:
    a 1:8 reverse split with a price kept 14.125 shares). (Checked here, not by the event: a stored event must load.)"""
    if cash_price not in (None, "") and fraction != "cash":
        raise InvalidValue(f"{what}: a cash-in-lieu price is given, but fractions of a share are to be {fraction}: "
                           f"give --fraction cash (CSV: fraction cash) to pay them in cash, or no price")


def split_event(symbol: str, ratio: str, fraction: str = "keep", cash_price=None, stock_dividend: bool = False) -> ev.SplitApplied:
    _price_means_cash(f"split of {symbol}", fraction, cash_price)
    new, old = parse_ratio(ratio, "split ratio")
    return ev.SplitApplied(symbol=v.symbol(symbol), new=new, old=old, fraction=fraction,
                           cash_price=_opt(cash_price, "cash-in-lieu price"), stock_dividend=stock_dividend)


def dividend_event(symbol: str, per_share, pay_date, kind: str = "ordinary", withholding=None,
                   reinvest_price=None) -> ev.DividendDeclared:
    return ev.DividendDeclared(symbol=v.symbol(symbol), per_share=v.positive(per_share, "dividend per share"),
                               pay_date=v.parse_date(pay_date, "pay date"), kind=kind,
                               withholding=v.non_negative(withholding or "0", "withholding rate"),
                               reinvest_price=_opt(reinvest_price, "reinvestment price"))


def merger_event(symbol: str, acquirer: str | None, shares: str | None, cash, acquirer_fmv=None, fraction: str = "cash",
                 cash_price=None, taxable: bool = False) -> ev.MergerCompleted:
    _price_means_cash(f"merger of {symbol}", fraction, cash_price)
    if acquirer and not shares:
        raise InvalidValue(f"merger of {symbol}: an acquirer ({acquirer}) needs the shares it gives (--shares N:M); "
                           f"a merger for cash alone names no acquirer")
    new, old = parse_ratio(shares, "shares per share") if shares else (Decimal(0), Decimal(1))
    return ev.MergerCompleted(symbol=v.symbol(symbol), acquirer=v.symbol(acquirer) if acquirer else None, shares=new,
                              per=old, cash=v.non_negative(cash or "0", "cash per share"),
                              acquirer_fmv=_opt(acquirer_fmv, "acquirer fair market value"), fraction=fraction,
                              cash_price=_opt(cash_price, "cash-in-lieu price"), taxable=taxable)


def spinoff_event(symbol: str, child: str, shares: str, allocation=None, parent_fmv=None, child_fmv=None,
                  fraction: str = "cash", cash_price=None) -> ev.SpinoffCompleted:
    _price_means_cash(f"spinoff of {child} from {symbol}", fraction, cash_price)
    new, old = parse_ratio(shares, "child shares per parent share")
    pf, cf = _opt(parent_fmv, "parent fair market value"), _opt(child_fmv, "child fair market value")
    if allocation not in (None, ""):
        alloc = v.to_decimal(allocation, "basis allocation")
    elif pf is not None and cf is not None:
        alloc = ev.spinoff_allocation(new / old, pf, cf).quantize(Decimal("0.0000000001"))
    else:
        raise InvalidValue(
            f"spinoff of {child} from {symbol}: basis cannot be allocated by share count; give the child's basis "
            "allocation fraction, or the fair market values of parent and child on the distribution date")
    return ev.SpinoffCompleted(symbol=v.symbol(symbol), child=v.symbol(child), shares=new, per=old, allocation=alloc,
                               parent_fmv=pf, child_fmv=cf, fraction=fraction, cash_price=_opt(cash_price, "cash-in-lieu price"))


def symbol_change_event(symbol: str, new_symbol: str) -> ev.SymbolChanged:
    return ev.SymbolChanged(symbol=v.symbol(symbol), new_symbol=v.symbol(new_symbol))


def reinvest_event(account: str, symbol: str, enabled: bool) -> ev.ReinvestmentSet:
    return ev.ReinvestmentSet(account=v.account_id(account), symbol=v.symbol(symbol), enabled=enabled)


def _opt(value, what: str) -> Decimal | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return v.positive(value, what)
