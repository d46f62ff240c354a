"""Model versions on Lambda: the label each published version carries, the versions a
function has, and the routing of `/v2/models/{m}/versions/{v}/...` to the one asked for."""
