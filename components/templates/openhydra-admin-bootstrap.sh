# Run by the open-hydra admin bootstrap Job (image: MySQL community server, for its client).
# With authentication on, open-hydra-server refuses every user request that carries no
# Open-Hydra-Auth header of an existing user, so the first admin cannot be created through
# the API: it goes straight into the server's `user` table (the server keeps passwords as
# given). Values arrive base64-encoded in the environment: no quoting reaches the SQL.
set -eu
mysql --host="${MYSQL_HOST}" --user=root --database=openhydra --execute="
INSERT INTO user (username, password, ch_name, description, email, role)
VALUES (FROM_BASE64('${ADMIN_USER_B64}'), FROM_BASE64('${ADMIN_PASSWORD_B64}'),
        FROM_BASE64('${ADMIN_USER_B64}'), 'platform administrator (ai-platform)', '', 1)
ON DUPLICATE KEY UPDATE password = VALUES(password), role = 1;"
echo "admin user ready"
