"""Who may talk to a bot: access policies, allow lists and pairing codes.

```python
access = AccessControl("pairing")
router = wx.Router(access=access)           # as Router middleware
handler = access.guard(my_handler)          # or around any handler
```

With ``"pairing"`` an unknown user gets a one-time code; the owner approves it with
``weixin-trio pair approve CODE``. The user who scanned the QR code is always allowed.
Everything is kept in the store (key-value namespaces ``access.allow``,
``access.pending`` and ``access.deny`` of each account), so it survives restarts and
can be changed by another process while the bot runs. See the how-to "Who may talk to
your bot".
"""

from ._access.book import AccessBook as AccessBook
from ._access.codes import (
    CODE_ALPHABET as CODE_ALPHABET,
    CODE_LENGTH as CODE_LENGTH,
    Pending as Pending,
)
from ._access.control import (
    DEFAULT_PAIRING_REPLY as DEFAULT_PAIRING_REPLY,
    AccessControl as AccessControl,
    AccessStatistics as AccessStatistics,
    Policy as Policy,
)
from ._errors import NoStoreError as NoStoreError

__all__ = [
    "CODE_ALPHABET",
    "CODE_LENGTH",
    "DEFAULT_PAIRING_REPLY",
    "AccessBook",
    "AccessControl",
    "AccessStatistics",
    "NoStoreError",
    "Pending",
    "Policy",
]
