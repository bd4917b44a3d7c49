"""Filters for the molecule verify playbooks (tests only, not part of the collection)."""


def old_token_pairs(host_tokens, gone_realms):
    """[[realm, token], ...] for every token a realm no longer uses.

    That is every token in a realm's ``previous`` history (rotated out or
    replaced), plus the token of each realm turned off (retired).
    """
    pairs = []
    for realm, entry in sorted(host_tokens.items()):
        pairs.extend([realm, old["token"]] for old in entry.get("previous") or [])
        if realm in gone_realms:
            pairs.append([realm, entry["token"]])
    return pairs


class FilterModule:
    def filters(self):
        return {"old_token_pairs": old_token_pairs}
