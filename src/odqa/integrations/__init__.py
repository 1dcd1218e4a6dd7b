"""odqa inside other frameworks, each an optional extra; they call `odqa.api` only.

    odqa.integrations.langchain   OdqaRetriever (a LangChain retriever), OdqaQA (a runnable, and a tool)
    odqa.integrations.haystack    OdqaRetriever, OdqaReader: Haystack components
    odqa.integrations.mcp         an MCP server with search, ask and list_indexes (`odqa mcp`)

Importing one without its extra raises `odqa.api.MissingExtra` naming the extra to install
(pip install "odqa[langchain]"); `import odqa` imports none of these frameworks.
"""
