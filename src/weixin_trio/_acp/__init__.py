"""``weixin-trio acp``: each WeChat user talks to an ACP agent subprocess (the ``acp`` extra).

Nothing here is imported by ``weixin_trio`` or a bot: only the ``acp`` command loads
it. The JSON-RPC layer is our own ([`jsonrpc`][weixin_trio._acp.jsonrpc] sans-IO,
[`connection`][weixin_trio._acp.connection] on trio streams), since the
``agent-client-protocol`` package runs on asyncio only.
"""
