"""The prompts the performance benchmarks send: what applications really send, not a
seven-word question.

Shapes (English and German text with names, addresses, e-mails, phone numbers, IBANs;
see :mod:`appliance.testing.documents`):

* **S** about 40 words with a name and an e-mail address;
* **M** a 2 KB e-mail thread naming several people;
* **L** a 20 KB retrieved context (e-mails and contract clauses, EN and DE) and a question;
* **XL** a 100 KB document to summarise;
* **R** an 8 KB system prompt and three tool definitions, the same in every request, and a
  short user turn that changes; **R0** the same user turns alone (R - R0 is what the
  repeated part adds).

Request ``i`` of a shape differs from every other request ``i`` of that shape in its
documents and user turn, so nothing but R's repeated part can be answered from a cache.
The fake providers answer ``echo: <last user message>``: answers are as large as the
prompts' last turn, and the answer screen reads them too.
"""

from __future__ import annotations

from typing import Any

from appliance.testing.documents import EN_FILLER, archive, thread

SHAPES = ("S", "M", "L", "XL", "R", "R0")

_S_TEMPLATE = (
    "Hi, this is {name} from accounts ({email}). Could you summarise the attached quarterly "
    "report {i} in three bullet points for the board, keep the figures for revenue and costs, "
    "and draft a short reply that thanks the finance team for their work this quarter?"
)
_NAMES = ("Jane Doe", "Peter Novak", "Sarah Lee", "Thomas Becker", "Amira Haddad", "Luis Ortega",
          "Grace Okafor", "Henrik Lund", "Mei Chen", "Olivia Brown")


def _system_prompt() -> str:
    """About 8 KB of instructions, with the support team's names and contacts in it."""
    lines = ["You are the contracts assistant of Northwind Services Ltd. Follow these rules."]
    k = 0
    while sum(len(x) + 1 for x in lines) < 8000:
        lines.append(f"Rule {k + 1}: {EN_FILLER[k % len(EN_FILLER)]} "
                     f"{EN_FILLER[(k * 7 + 3) % len(EN_FILLER)]}")
        if k % 6 == 0:
            lines.append(f"Escalate questions about rule {k + 1} to Margaret Hughes "
                         f"(margaret.hughes@northwind.example, +44 20 7946 0{k:03d}).")
        k += 1
    return "\n".join(lines)


SYSTEM = _system_prompt()
TOOLS = [
    {"type": "function", "function": {
        "name": name, "description": description,
        "parameters": {"type": "object", "properties": {
            "query": {"type": "string", "description": "What to look up, in the user's words."},
            "customer": {"type": "string", "description": "The customer's name or e-mail."}},
            "required": ["query"]}}}
    for name, description in (
        ("search_contracts", "Search the contract archive by party, clause or date."),
        ("lookup_invoice", "Find an invoice and its payment status by number or customer."),
        ("open_ticket", "Open a support ticket for the customer with a short summary."),
    )
]


def short_prompt(i: int) -> str:
    """Shape S's user turn ``i``: about 40 words, a name and an e-mail address."""
    name = _NAMES[i % len(_NAMES)]
    email = name.lower().replace(" ", ".") + f"{i}@example.com"
    return _S_TEMPLATE.format(name=name, email=email, i=i)


def body(shape: str, i: int, *, model: str = "gpt-4o", stream: bool = False) -> dict[str, Any]:
    """Chat completions request ``i`` of ``shape``."""
    if shape == "S":
        messages = [{"role": "user", "content": short_prompt(i)}]
    elif shape == "M":
        messages = [{"role": "user", "content": "Who is waiting for an answer in this thread?\n\n"
                     + thread(2000, seed=1000 + i).text}]
    elif shape == "L":
        messages = [{"role": "user", "content": "Use these documents to answer.\n\n"
                     + archive(20000, seed=2000 + i).text
                     + "\nQuestion: which invoices are still unpaid, and who signed for them?"}]
    elif shape == "XL":
        messages = [{"role": "user", "content": "Summarise this archive:\n\n"
                     + archive(100000, seed=3000 + i).text}]
    elif shape in ("R", "R0"):
        i += 500_000 if shape == "R0" else 0  # R0's turns are new to the cache too
        messages = [{"role": "user", "content": f"Has invoice {4700 + i} of Anna Schmidt been "
                                                f"paid? Her number is +49 30 123{i % 100000:05d}."}]
        if shape == "R":
            messages = [{"role": "system", "content": SYSTEM}, *messages]
    else:
        raise ValueError(f"unknown shape {shape!r}; one of {', '.join(SHAPES)}")
    out: dict[str, Any] = {"model": model, "messages": messages}
    if shape == "R":
        out["tools"] = TOOLS
    if stream:
        out["stream"] = True
    return out
