"""The Folkeregister feed: the population register's facts about identities, protection,
family relations and deaths (shared/spec/folkeregister.md).

The feed is not a fourth register on the card: it is the authority that anchors a card to a
registered person. ``records`` holds its typed records, ``day`` folds the day's events into what
they change before the next snapshot, ``kinship`` says how two people are related, and
``overlay`` puts the feed's facts onto a served card at lookup.
"""
