"""``weixin-trio mcp``: one stored account as MCP tools (the ``mcp`` extra).

Nothing here is imported by ``weixin_trio`` or a bot: only the ``mcp`` command loads
it, and only [`server`][weixin_trio._mcp.server] imports the ``mcp`` SDK.
"""
