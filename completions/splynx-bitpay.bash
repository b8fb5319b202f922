_splynx__bitpay() {
    local i cur prev opts cmd
    COMPREPLY=()
    if [[ "${BASH_VERSINFO[0]}" -ge 4 ]]; then
        cur="$2"
    else
        cur="${COMP_WORDS[COMP_CWORD]}"
    fi
    prev="$3"
    cmd=""
    opts=""

    for i in "${COMP_WORDS[@]:0:COMP_CWORD}"
    do
        case "${cmd},${i}" in
            ",$1")
                cmd="splynx__bitpay"
                ;;
            splynx__bitpay,audit)
                cmd="splynx__bitpay__subcmd__audit"
                ;;
            splynx__bitpay,config)
                cmd="splynx__bitpay__subcmd__config"
                ;;
            splynx__bitpay,create-invoice)
                cmd="splynx__bitpay__subcmd__create__subcmd__invoice"
                ;;
            splynx__bitpay,direct-pay)
                cmd="splynx__bitpay__subcmd__direct__subcmd__pay"
                ;;
            splynx__bitpay,doctor)
                cmd="splynx__bitpay__subcmd__doctor"
                ;;
            splynx__bitpay,handle-ipn)
                cmd="splynx__bitpay__subcmd__handle__subcmd__ipn"
                ;;
            splynx__bitpay,help)
                cmd="splynx__bitpay__subcmd__help"
                ;;
            splynx__bitpay,metrics)
                cmd="splynx__bitpay__subcmd__metrics"
                ;;
            splynx__bitpay,pair)
                cmd="splynx__bitpay__subcmd__pair"
                ;;
            splynx__bitpay,prune)
                cmd="splynx__bitpay__subcmd__prune"
                ;;
            splynx__bitpay,reconcile)
                cmd="splynx__bitpay__subcmd__reconcile"
                ;;
            splynx__bitpay,refund)
                cmd="splynx__bitpay__subcmd__refund"
                ;;
            splynx__bitpay,replay)
                cmd="splynx__bitpay__subcmd__replay"
                ;;
            splynx__bitpay,resolve)
                cmd="splynx__bitpay__subcmd__resolve"
                ;;
            splynx__bitpay,settings)
                cmd="splynx__bitpay__subcmd__settings"
                ;;
            splynx__bitpay,show)
                cmd="splynx__bitpay__subcmd__show"
                ;;
            splynx__bitpay,status)
                cmd="splynx__bitpay__subcmd__status"
                ;;
            splynx__bitpay,unpair)
                cmd="splynx__bitpay__subcmd__unpair"
                ;;
            splynx__bitpay__subcmd__help,audit)
                cmd="splynx__bitpay__subcmd__help__subcmd__audit"
                ;;
            splynx__bitpay__subcmd__help,config)
                cmd="splynx__bitpay__subcmd__help__subcmd__config"
                ;;
            splynx__bitpay__subcmd__help,create-invoice)
                cmd="splynx__bitpay__subcmd__help__subcmd__create__subcmd__invoice"
                ;;
            splynx__bitpay__subcmd__help,direct-pay)
                cmd="splynx__bitpay__subcmd__help__subcmd__direct__subcmd__pay"
                ;;
            splynx__bitpay__subcmd__help,doctor)
                cmd="splynx__bitpay__subcmd__help__subcmd__doctor"
                ;;
            splynx__bitpay__subcmd__help,handle-ipn)
                cmd="splynx__bitpay__subcmd__help__subcmd__handle__subcmd__ipn"
                ;;
            splynx__bitpay__subcmd__help,help)
                cmd="splynx__bitpay__subcmd__help__subcmd__help"
                ;;
            splynx__bitpay__subcmd__help,metrics)
                cmd="splynx__bitpay__subcmd__help__subcmd__metrics"
                ;;
            splynx__bitpay__subcmd__help,pair)
                cmd="splynx__bitpay__subcmd__help__subcmd__pair"
                ;;
            splynx__bitpay__subcmd__help,prune)
                cmd="splynx__bitpay__subcmd__help__subcmd__prune"
                ;;
            splynx__bitpay__subcmd__help,reconcile)
                cmd="splynx__bitpay__subcmd__help__subcmd__reconcile"
                ;;
            splynx__bitpay__subcmd__help,refund)
                cmd="splynx__bitpay__subcmd__help__subcmd__refund"
                ;;
            splynx__bitpay__subcmd__help,replay)
                cmd="splynx__bitpay__subcmd__help__subcmd__replay"
                ;;
            splynx__bitpay__subcmd__help,resolve)
                cmd="splynx__bitpay__subcmd__help__subcmd__resolve"
                ;;
            splynx__bitpay__subcmd__help,settings)
                cmd="splynx__bitpay__subcmd__help__subcmd__settings"
                ;;
            splynx__bitpay__subcmd__help,show)
                cmd="splynx__bitpay__subcmd__help__subcmd__show"
                ;;
            splynx__bitpay__subcmd__help,status)
                cmd="splynx__bitpay__subcmd__help__subcmd__status"
                ;;
            splynx__bitpay__subcmd__help,unpair)
                cmd="splynx__bitpay__subcmd__help__subcmd__unpair"
                ;;
            *)
                ;;
        esac
    done

    case "${cmd}" in
        splynx__bitpay)
            opts="-v -q -h -V --config --json --verbose --quiet --help --version pair unpair status create-invoice direct-pay handle-ipn reconcile refund replay metrics audit resolve prune show settings config doctor help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 1 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --config)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        splynx__subcmd__bitpay__subcmd__audit)
            opts="-v -q -h --from --to --csv --record --sash --session-admin --from-page --config --json --verbose --quiet --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --from)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --to)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --sash)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --session-admin)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --config)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        splynx__subcmd__bitpay__subcmd__config)
            opts="-v -q -h --partner --config --json --verbose --quiet --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --partner)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --config)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        splynx__subcmd__bitpay__subcmd__create__subcmd__invoice)
            opts="-v -q -h --customer --invoice --invoice-number --proforma --proforma-number --check --expect-total --refill --config --json --verbose --quiet --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --customer)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --invoice)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --invoice-number)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --proforma)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --proforma-number)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --expect-total)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --refill)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --config)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        splynx__subcmd__bitpay__subcmd__direct__subcmd__pay)
            opts="-v -q -h --invoice --invoice-number --proforma --proforma-number --check --expect-total --config --json --verbose --quiet --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --invoice)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --invoice-number)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --proforma)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --proforma-number)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --expect-total)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --config)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        splynx__subcmd__bitpay__subcmd__doctor)
            opts="-v -q -h --config --json --verbose --quiet --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --config)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        splynx__subcmd__bitpay__subcmd__handle__subcmd__ipn)
            opts="-v -q -h --signature --btcpay-sig --config --json --verbose --quiet --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --signature)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --btcpay-sig)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --config)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        splynx__subcmd__bitpay__subcmd__help)
            opts="pair unpair status create-invoice direct-pay handle-ipn reconcile refund replay metrics audit resolve prune show settings config doctor help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        splynx__subcmd__bitpay__subcmd__help__subcmd__audit)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        splynx__subcmd__bitpay__subcmd__help__subcmd__config)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        splynx__subcmd__bitpay__subcmd__help__subcmd__create__subcmd__invoice)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        splynx__subcmd__bitpay__subcmd__help__subcmd__direct__subcmd__pay)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        splynx__subcmd__bitpay__subcmd__help__subcmd__doctor)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        splynx__subcmd__bitpay__subcmd__help__subcmd__handle__subcmd__ipn)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        splynx__subcmd__bitpay__subcmd__help__subcmd__help)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        splynx__subcmd__bitpay__subcmd__help__subcmd__metrics)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        splynx__subcmd__bitpay__subcmd__help__subcmd__pair)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        splynx__subcmd__bitpay__subcmd__help__subcmd__prune)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        splynx__subcmd__bitpay__subcmd__help__subcmd__reconcile)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        splynx__subcmd__bitpay__subcmd__help__subcmd__refund)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        splynx__subcmd__bitpay__subcmd__help__subcmd__replay)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        splynx__subcmd__bitpay__subcmd__help__subcmd__resolve)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        splynx__subcmd__bitpay__subcmd__help__subcmd__settings)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        splynx__subcmd__bitpay__subcmd__help__subcmd__show)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        splynx__subcmd__bitpay__subcmd__help__subcmd__status)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        splynx__subcmd__bitpay__subcmd__help__subcmd__unpair)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        splynx__subcmd__bitpay__subcmd__metrics)
            opts="-v -q -h --config --json --verbose --quiet --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --config)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        splynx__subcmd__bitpay__subcmd__pair)
            opts="-v -q -h --btcpay --authorize-redirect --state --request --facade --replace --sash --session-admin --from-page --config --json --verbose --quiet --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --authorize-redirect)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --state)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --facade)
                    COMPREPLY=($(compgen -W "merchant pos" -- "${cur}"))
                    return 0
                    ;;
                --sash)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --session-admin)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --config)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        splynx__subcmd__bitpay__subcmd__prune)
            opts="-v -q -h --dry-run --older-than --config --json --verbose --quiet --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --older-than)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --config)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        splynx__subcmd__bitpay__subcmd__reconcile)
            opts="-v -q -h --since --dry-run --config --json --verbose --quiet --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --since)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --config)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        splynx__subcmd__bitpay__subcmd__refund)
            opts="-v -q -h --amount --reason --cancel --record --sash --session-admin --from-page --config --json --verbose --quiet --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --amount)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --reason)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --cancel)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --sash)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --session-admin)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --config)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        splynx__subcmd__bitpay__subcmd__replay)
            opts="-v -q -h --webhook --apply --config --json --verbose --quiet --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --webhook)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --config)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        splynx__subcmd__bitpay__subcmd__resolve)
            opts="-v -q -h --note --sash --session-admin --from-page --config --json --verbose --quiet --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --note)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --sash)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --session-admin)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --config)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        splynx__subcmd__bitpay__subcmd__settings)
            opts="-v -q -h --customer --config --json --verbose --quiet --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --customer)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --config)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        splynx__subcmd__bitpay__subcmd__show)
            opts="-v -q -h --customer --config --json --verbose --quiet --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --customer)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --config)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        splynx__subcmd__bitpay__subcmd__status)
            opts="-v -q -h --sash --session-admin --from-page --config --json --verbose --quiet --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --sash)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --session-admin)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --config)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        splynx__subcmd__bitpay__subcmd__unpair)
            opts="-v -q -h --sash --session-admin --from-page --config --json --verbose --quiet --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --sash)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --session-admin)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --config)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
    esac
}

if [[ "${BASH_VERSINFO[0]}" -eq 4 && "${BASH_VERSINFO[1]}" -ge 4 || "${BASH_VERSINFO[0]}" -gt 4 ]]; then
    complete -F _splynx__bitpay -o nosort -o bashdefault -o default splynx-bitpay
else
    complete -F _splynx__bitpay -o bashdefault -o default splynx-bitpay
fi
